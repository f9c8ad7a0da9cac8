"""Gemini backend through the `google-genai` SDK (successor of the end-of-life google-generativeai).

Key from GEMINI_API_KEY or GOOGLE_API_KEY; MEMCHAT_GEMINI_BASE_URL points the SDK at another
endpoint (a proxy, or the loopback stand-in the tests run). Streaming uses
`models/{model}:streamGenerateContent?alt=sse`. Retries are ours (bounded, jittered, honouring
Retry-After) and only happen before the first chunk, so no text is ever duplicated.

No repetition_penalty or no-repeat n-gram: the API's presence and frequency penalties subtract a
fixed amount per occurrence, a different knob, so ours are reported unsupported, not mapped onto them.
"""
from __future__ import annotations

import threading
from typing import Iterator

from assistant.backends.base import BackendError, GenerationOptions, StreamState, approx_tokens
from assistant.backends.errors import retrying_stream

DEFAULT_MODEL = "gemini-2.5-flash"
KEY_HINT = "GEMINI_API_KEY (or GOOGLE_API_KEY)"


class GeminiBackend:
    name = "gemini"
    supported_options = frozenset({"temperature", "top_p", "top_k", "max_new_tokens", "seed", "greedy", "stop"})

    def __init__(self, model: str | None, api_key: str | None, base_url: str | None = None, timeout_s: float = 60.0):
        if not api_key:
            raise BackendError(f"no Gemini key: set {KEY_HINT} in the environment or .env "
                               "(get one at https://aistudio.google.com/apikey), or use --backend local", "missing_key")
        self.model = model or DEFAULT_MODEL
        self._key = api_key
        self.timeout_s = timeout_s
        from google import genai
        from google.genai import types

        http_options = types.HttpOptions(timeout=int(timeout_s * 1000),
                                         retry_options=types.HttpRetryOptions(attempts=1))
        if base_url:
            http_options.base_url = base_url
        self._client = genai.Client(api_key=api_key, http_options=http_options)

    def count_tokens(self, text: str) -> int:
        return approx_tokens(text)  # a count_tokens call per prompt would cost a round trip

    def _request(self, messages: list[dict], options: GenerationOptions):
        from google.genai import types

        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        contents = [types.Content(role="model" if m["role"] == "assistant" else "user",
                                  parts=[types.Part(text=m["content"])])
                    for m in messages if m["role"] != "system"]
        config = types.GenerateContentConfig(
            system_instruction=system or None,
            temperature=0.0 if options.greedy else options.temperature,
            top_p=None if options.greedy else options.top_p,
            top_k=1 if options.greedy else options.top_k,
            max_output_tokens=options.max_new_tokens,
            seed=options.seed,
            stop_sequences=list(options.stop) or None,
        )
        return contents, config

    def stream(self, messages: list[dict], options: GenerationOptions,
               cancel: threading.Event, state: StreamState) -> Iterator[str]:
        contents, config = self._request(messages, options)

        def attempt() -> Iterator[str]:
            for chunk in self._client.models.generate_content_stream(model=self.model, contents=contents, config=config):
                self._check_blocked(chunk)
                if chunk.usage_metadata is not None:
                    state.usage = {"prompt_tokens": chunk.usage_metadata.prompt_token_count,
                                   "completion_tokens": chunk.usage_metadata.candidates_token_count}
                if chunk.candidates and chunk.candidates[0].finish_reason:
                    state.finish_reason = str(chunk.candidates[0].finish_reason.value).lower()
                text = _chunk_text(chunk)
                if text:
                    yield text
                if cancel.is_set():
                    state.finish_reason = "cancelled"
                    return

        yield from retrying_stream(attempt, _status_of, "Gemini", KEY_HINT, (self._key,), self.timeout_s, cancel)

    @staticmethod
    def _check_blocked(chunk) -> None:
        feedback = getattr(chunk, "prompt_feedback", None)
        if feedback is not None and feedback.block_reason:
            raise BackendError(f"Gemini blocked the prompt ({feedback.block_reason.value}); rephrase the message",
                               "safety")
        if chunk.candidates and chunk.candidates[0].finish_reason is not None:
            reason = str(chunk.candidates[0].finish_reason.value)
            if reason in ("SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII"):
                raise BackendError(f"Gemini stopped the reply for safety ({reason}); rephrase the message", "safety")


def _status_of(exc: Exception) -> tuple[int, dict] | None:
    from google.genai import errors

    if isinstance(exc, errors.APIError):
        return int(exc.code or 0), dict(getattr(getattr(exc, "response", None), "headers", None) or {})
    return None


def _chunk_text(chunk) -> str:
    if not chunk.candidates or chunk.candidates[0].content is None:
        return ""
    return "".join(p.text for p in (chunk.candidates[0].content.parts or []) if getattr(p, "text", None) and not getattr(p, "thought", False))
