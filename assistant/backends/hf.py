"""Hugging Face backend: `huggingface_hub.InferenceClient.chat_completion` with streaming.

A model id on the Hub's inference providers (token from HF_TOKEN), or MEMCHAT_HF_BASE_URL for any
OpenAI-compatible server (TGI, vLLM, llama.cpp server, Ollama), which speak /v1/chat/completions
with server-sent events. top_k is not part of that API; it is sent in the request body, which TGI,
vLLM and llama.cpp honour. Retries as for Gemini: bounded, jittered, Retry-After, before the first chunk.
"""
from __future__ import annotations

import threading
from typing import Iterator

from assistant.backends.base import BackendError, GenerationOptions, StreamState, approx_tokens, redact
from assistant.backends.errors import RETRYABLE_STATUS, status_error, transport_error, transport_kind
from assistant.backends.retry import MAX_ATTEMPTS, backoff_delay, parse_retry_after, wait

DEFAULT_MODEL = "HuggingFaceTB/SmolLM3-3B"
KEY_HINT = "HF_TOKEN"


class HFBackend:
    name = "hf"
    supported_options = frozenset({"temperature", "top_p", "top_k", "max_new_tokens", "seed", "greedy"})

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
        from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

        kwargs = dict(
            stream=True, max_tokens=options.max_new_tokens, seed=options.seed,
            temperature=0.0 if options.greedy else options.temperature,
            top_p=None if options.greedy else options.top_p,
            extra_body={"top_k": 1 if options.greedy else options.top_k},
            stream_options={"include_usage": True},
        )
        if self._base_url and self.model != "default":
            kwargs["model"] = self.model
        for attempt in range(1, MAX_ATTEMPTS + 1):
            started = False
            try:
                for chunk in self._client.chat_completion(messages, **kwargs):
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
                        started = True
                        yield text
                    if cancel.is_set():
                        state.finish_reason = "cancelled"
                        return
                return
            except OfflineModeIsEnabled:
                raise BackendError("HF_HUB_OFFLINE=1 is set, and it stops huggingface_hub from sending any request; "
                                   "unset it to use the hf backend", "network") from None
            except HfHubHTTPError as exc:
                response = getattr(exc, "response", None)
                status = int(getattr(response, "status_code", 0) or 0)
                if status in RETRYABLE_STATUS and not started and attempt < MAX_ATTEMPTS:
                    headers = getattr(response, "headers", None) or {}
                    if wait(backoff_delay(attempt, parse_retry_after(headers.get("retry-after"))), cancel):
                        return
                    continue
                raise status_error("Hugging Face", status, str(exc), KEY_HINT, (self._token,)) from None
            except BackendError:
                raise
            except Exception as exc:
                kind = transport_kind(exc)
                if kind is not None:
                    raise transport_error("Hugging Face", kind, self.timeout_s) from None
                raise BackendError(f"Hugging Face sent a response memchat could not read: "
                                   f"{redact(str(exc), self._token)[:200]}", "bad_stream") from None
