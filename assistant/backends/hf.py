"""Hugging Face backend: `huggingface_hub.InferenceClient.chat_completion` with streaming.

A model id on the Hub's inference providers (token from HF_TOKEN), or MEMCHAT_HF_BASE_URL for an
OpenAI-compatible server (TGI; Ollama, LM Studio, llama.cpp and vLLM are --backend openai's, with
its model choice and errors), which speak /v1/chat/completions with server-sent events. top_k
is not part of that API; it is sent in the request body, which TGI,
vLLM and llama.cpp honour, and so is repetition_penalty when set (the server's own definition: TGI
counts the prompt's tokens too, where the local engines count only the reply's). No such server
takes a no-repeat n-gram size in a chat request, so that one is reported unsupported. Retries as
for Gemini: bounded, jittered, Retry-After, before the first chunk.
"""
from __future__ import annotations

import threading
from typing import Iterator

from assistant.backends.base import BackendError, GenerationOptions, StreamState, approx_tokens
from assistant.backends.errors import retrying_stream

DEFAULT_MODEL = "HuggingFaceTB/SmolLM3-3B"
KEY_HINT = "HF_TOKEN"


class HFBackend:
    name = "hf"
    supported_options = frozenset({"temperature", "top_p", "top_k", "max_new_tokens", "seed", "greedy", "stop",
                                   "repetition_penalty"})

    def __init__(self, model: str | None, token: str | None, base_url: str | None = None, timeout_s: float = 60.0):
        if not token and not base_url:
            raise BackendError("no Hugging Face token: set HF_TOKEN in the environment or .env "
                               "(https://huggingface.co/settings/tokens), or point MEMCHAT_HF_BASE_URL at an "
                               "OpenAI-compatible server", "missing_key")
        from huggingface_hub import InferenceClient

        self.model = model or ("default" if base_url else DEFAULT_MODEL)
        self._token = token
        self.timeout_s = timeout_s
        self._base_url = base_url
        if base_url:
            self._client = InferenceClient(base_url=base_url, token=token, timeout=timeout_s)
        else:
            self._client = InferenceClient(model=self.model, token=token, timeout=timeout_s)

    def count_tokens(self, text: str) -> int:
        return approx_tokens(text)

    def stream(self, messages: list[dict], options: GenerationOptions,
               cancel: threading.Event, state: StreamState) -> Iterator[str]:
        kwargs = dict(
            stream=True, max_tokens=options.max_new_tokens, seed=options.seed, stop=list(options.stop) or None,
            temperature=0.0 if options.greedy else options.temperature,
            top_p=None if options.greedy else options.top_p,
            extra_body={"top_k": 1 if options.greedy else options.top_k,
                        **({"repetition_penalty": options.repetition_penalty} if options.repetition_penalty != 1.0 else {})},
            stream_options={"include_usage": True},
        )
        if self._base_url and self.model != "default":
            kwargs["model"] = self.model

        def attempt() -> Iterator[str]:
            from huggingface_hub.errors import OfflineModeIsEnabled

            try:
                yield from read(self._client.chat_completion(messages, **kwargs))
            except OfflineModeIsEnabled:
                raise BackendError("HF_HUB_OFFLINE=1 is set, and it stops huggingface_hub from sending any "
                                   "request; unset it to use the hf backend", "network") from None

        def read(chunks) -> Iterator[str]:
            for chunk in chunks:
                if getattr(chunk, "usage", None):
                    state.usage = {"prompt_tokens": chunk.usage.prompt_tokens,
                                   "completion_tokens": chunk.usage.completion_tokens}
                if not chunk.choices:
                    continue
                choice = chunk.choices[0]
                if choice.finish_reason:
                    state.finish_reason = choice.finish_reason
                text = choice.delta.content if choice.delta else None
                if text:
                    yield text
                if cancel.is_set():
                    state.finish_reason = "cancelled"
                    return

        yield from retrying_stream(attempt, _status_of, "Hugging Face", KEY_HINT, (self._token,), self.timeout_s, cancel)


def _status_of(exc: Exception) -> tuple[int, dict] | None:
    from huggingface_hub.errors import HfHubHTTPError

    if isinstance(exc, HfHubHTTPError):
        response = getattr(exc, "response", None)
        return int(getattr(response, "status_code", 0) or 0), dict(getattr(response, "headers", None) or {})
    return None
