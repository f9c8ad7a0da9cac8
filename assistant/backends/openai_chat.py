"""OpenAI backend through the official `openai` SDK: OpenAI itself, or any OpenAI-compatible server
(Ollama, LM Studio, llama.cpp's llama-server, vLLM) at MEMCHAT_OPENAI_BASE_URL, which also serves
embeddings when MEMCHAT_EMBED_PROVIDER=openai (one server, one address).

Chat Completions with `stream: true` (server-sent events), usage asked for in the last chunk. A
local server takes any key, so without OPENAI_API_KEY a placeholder is sent, only to a base URL;
api.openai.com without a key fails before any request. With a base URL and no model, the server's
/v1/models is asked at the first reply: its only chat model is used (embedding models set aside),
several are listed in the error. Stop sequences go to every server; top_k and the repetition
penalty are not part of OpenAI's API: they go in the request body only to other servers (vLLM and
llama.cpp read them; Ollama's /v1 ignores them). Retries as for the other
remote backends: bounded, jittered, Retry-After, before the first chunk only.
"""
from __future__ import annotations

import threading
from functools import cached_property
from typing import Iterator

from assistant.backends.base import BackendError, GenerationOptions, StreamState, approx_tokens, redact
from assistant.backends.errors import retrying_stream, status_error, transport_error

DEFAULT_MODEL = "gpt-4o-mini"
OPENAI_URL = "https://api.openai.com/v1"
KEY_HINT = "OPENAI_API_KEY"
PLACEHOLDER_KEY = "no-key"  # local servers want a key in the header, any key
AUTO = "auto"  # no model named: the server's only model, found at the first reply
OPENAI_OPTIONS = frozenset({"temperature", "top_p", "max_new_tokens", "seed", "greedy", "stop"})
SERVER_OPTIONS = OPENAI_OPTIONS | {"top_k", "repetition_penalty"}
MODELS_SHOWN = 12
TEMPLATE_TOKENS = 4  # a chat template's role markers around each message


class OpenAIBackend:
    name = "openai"

    def __init__(self, model: str | None, api_key: str | None, base_url: str | None = None, timeout_s: float = 60.0):
        base_url = (base_url or "").rstrip("/") or None
        self._openai = base_url is None or "api.openai.com" in base_url
        if not api_key and self._openai:
            raise BackendError("no OpenAI key: set OPENAI_API_KEY in the environment or .env "
                               "(https://platform.openai.com/api-keys), or MEMCHAT_OPENAI_BASE_URL for a local "
                               "server (Ollama: http://127.0.0.1:11434/v1)", "missing_key")
        self._key = api_key
        self._base_url = base_url
        self.timeout_s = timeout_s
        self.model = model or (DEFAULT_MODEL if self._openai else AUTO)
        self.supported_options = OPENAI_OPTIONS if self._openai else SERVER_OPTIONS
        self._label = "OpenAI" if self._openai else f"the server at {_shown(base_url)}"
        self._ratio = 1.0  # the server's prompt tokens per estimated token, learned from its usage

    @cached_property
    def _client(self):
        import openai  # ~2 s to import: only when a reply or a model list is asked for, never by doctor

        # max_retries=0: the retries are ours (retrying_stream), so they are bounded and never repeat text
        return openai.OpenAI(api_key=self._key or PLACEHOLDER_KEY, base_url=self._base_url or OPENAI_URL,
                             timeout=self.timeout_s, max_retries=0)

    def load(self) -> None:
        """Ready ahead of the first reply (the TUI calls it in its loader): the SDK imported and,
        with no model named, the server's model found so the status bar can name it. A server
        that is down is no failure here: the first reply says so, in one line."""
        self._client
        try:
            self._resolve_model()
        except BackendError:
            pass

    def describe(self) -> str:
        if self.model == AUTO:
            return "model: the server's only chat model, found at the first reply; --model names one"
        return "Chat Completions, streamed"

    def count_tokens(self, text: str) -> int:
        """~4 characters a token, scaled by what the server reported for the last prompt: no tokenizer
        of the server's model is at hand, and a count that runs short would overflow its context."""
        return max(1, round(approx_tokens(text) * self._ratio))

    def stream(self, messages: list[dict], options: GenerationOptions,
               cancel: threading.Event, state: StreamState) -> Iterator[str]:
        import openai

        model = self._resolve_model()
        body = self._request(messages, options, model)
        estimate = sum(approx_tokens(m["content"]) + TEMPLATE_TOKENS for m in messages)

        def attempt() -> Iterator[str]:
            started = False
            try:
                with self._client.chat.completions.create(**body) as chunks:
                    for chunk in chunks:
                        if chunk.usage is not None:
                            state.usage = {"prompt_tokens": chunk.usage.prompt_tokens,
                                           "completion_tokens": chunk.usage.completion_tokens}
                            self._learn(chunk.usage.prompt_tokens, estimate)
                        if not chunk.choices:
                            continue
                        choice = chunk.choices[0]
                        if choice.finish_reason:
                            state.finish_reason = choice.finish_reason
                        text = choice.delta.content if choice.delta else None  # reasoning text is not the reply
                        if text:
                            started = True
                            yield text
                        if cancel.is_set():
                            state.finish_reason = "cancelled"
                            return  # leaving the `with` closes the connection: the server stops generating
            except openai.NotFoundError:
                raise self._not_found(model) from None
            except openai.APITimeoutError:
                raise transport_error(self._label, "timeout", self.timeout_s) from None
            except openai.APIConnectionError:
                raise (self._cut() if started else self._no_server()) from None
            except openai.APIStatusError:
                raise  # retrying_stream retries 429 and 5xx, and words the rest
            except openai.APIError as exc:  # an error event inside the stream (vLLM, llama.cpp send them)
                detail = " ".join(redact(exc.message, self._key).split())[:200]  # one line, whatever it held
                raise BackendError(f"{self._label} reported an error mid-reply: {detail}", "bad_stream") from None
            if started and state.finish_reason is None:
                raise self._cut()

        yield from retrying_stream(attempt, _status_of, self._label, KEY_HINT, (self._key,), self.timeout_s, cancel)

    def _request(self, messages: list[dict], options: GenerationOptions, model: str) -> dict:
        body: dict = {"model": model, "messages": messages, "stream": True, "stream_options": {"include_usage": True},
                      "temperature": 0.0 if options.greedy else options.temperature}
        if not options.greedy:
            body["top_p"] = options.top_p
        # OpenAI's newer models take only max_completion_tokens; local servers know max_tokens
        body["max_completion_tokens" if self._openai else "max_tokens"] = options.max_new_tokens
        if options.seed is not None:
            body["seed"] = options.seed
        if options.stop:
            body["stop"] = list(options.stop)
        if not self._openai:
            extra = {"top_k": 1 if options.greedy else options.top_k}
            if options.repetition_penalty != 1.0:  # vLLM's name, then llama.cpp's and LM Studio's
                extra.update(repetition_penalty=options.repetition_penalty, repeat_penalty=options.repetition_penalty)
            body["extra_body"] = extra
        return body

    def _learn(self, prompt_tokens: int | None, estimate: int) -> None:
        if prompt_tokens and estimate >= 32:  # a few words say little about the tokenizer
            self._ratio = min(max(prompt_tokens / estimate, 0.5), 8.0)  # Chinese, by SmolLM2's tokenizer: 7x the estimate

    # -- the server's models, and the errors that name them -------------------------------------
    def server_models(self) -> list[str]:
        """The ids /v1/models lists; BackendError when the server cannot be asked."""
        import openai

        try:
            return [m.id for m in self._client.with_options(timeout=min(self.timeout_s, 10.0)).models.list().data]
        except openai.APITimeoutError:
            raise transport_error(self._label, "timeout", min(self.timeout_s, 10.0)) from None
        except openai.APIConnectionError:
            raise self._no_server() from None
        except openai.APIStatusError as exc:
            raise status_error(self._label, exc.status_code, str(exc), KEY_HINT, (self._key,)) from None

    def _resolve_model(self) -> str:
        if self.model != AUTO:
            return self.model
        names = chat_models(self.server_models())
        if len(names) == 1:
            self.model = names[0]
            return self.model
        if not names:
            raise BackendError(f"{self._label} lists no chat model; load or pull one (Ollama: `ollama pull llama3.2`), "
                               "or name one with --model", "not_found")
        raise BackendError(f"{self._label} has {len(names)} models: {_listing(names)}; choose one with --model "
                           "or MEMCHAT_MODEL", "not_found")

    def _not_found(self, model: str) -> BackendError:
        try:
            names = self.server_models()
        except BackendError:
            names = []
        if names:
            return BackendError(f"{self._label} has no model {model!r} (404); it has: {_listing(names)} "
                                "(choose with --model or MEMCHAT_MODEL)", "not_found")
        where = "" if self._openai else ", and that MEMCHAT_OPENAI_BASE_URL ends in /v1"
        return BackendError(f"{self._label}: model {model!r} not found (404); check --model{where}", "not_found")

    def _no_server(self) -> BackendError:
        if self._openai:
            return transport_error("OpenAI", "network", self.timeout_s)
        return BackendError(f"no server at {_shown(self._base_url)}: start Ollama (`ollama serve`) or set "
                            "MEMCHAT_OPENAI_BASE_URL", "network")

    def _cut(self) -> BackendError:
        return BackendError(f"{self._label} cut the reply off mid-way; the part received is kept, "
                            "try again", "bad_stream")


def _status_of(exc: Exception) -> tuple[int, dict] | None:
    import openai

    if isinstance(exc, openai.APIStatusError):
        return exc.status_code, dict(exc.response.headers)
    return None


def chat_models(names: list[str]) -> list[str]:
    """The ids that can chat: servers list their embedding models too (Ollama's nomic-embed-text,
    LM Studio's text-embedding-*), and one of those is never the model to answer with."""
    return [name for name in names if "embed" not in name.lower()]


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:MODELS_SHOWN])
    return shown + (f" … ({len(names)} in all)" if len(names) > MODELS_SHOWN else "")


def _shown(url: str | None) -> str:
    from assistant.config import hide_password  # a base URL may carry a password

    return hide_password(url or OPENAI_URL)
