"""The model-backend protocol: `stream(messages, options, cancel)` yields text chunks.

A backend turns chat messages ({"role": "system"|"user"|"assistant", "content": str}) into a
stream of text. It reports which decoding options it could not honour (never drops them silently),
counts tokens with its own tokenizer where it has one, and turns expected failures into
BackendError: one line that says what to do next, with any key redacted.
"""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field, fields
from typing import Iterator, Protocol

@dataclass
class GenerationOptions:
    temperature: float = 0.7
    top_p: float = 0.9
    top_k: int = 50
    max_new_tokens: int = 256
    seed: int | None = None
    greedy: bool = False
    stop: tuple[str, ...] = ()  # the reply ends before any of these (MEMCHAT_STOP, --stop)
    # Repetition control, over the tokens of the reply only (never the prompt, whose recalled notes
    # an answer should repeat): a CTRL-style penalty (1.0: off) and a ban on repeating any n-gram
    # of this many tokens (0: off). 1.1 took SmolLM2's looping replies from 64 % to none for one
    # answer of 60 on the answer eval; the n-gram ban stays off (docs/answers.md).
    repetition_penalty: float = 1.1
    no_repeat_ngram_size: int = 0

    @classmethod
    def from_settings(cls, settings) -> "GenerationOptions":
        return cls(**{f.name: getattr(settings, f.name) for f in fields(cls)})

    def unsupported(self, supported: frozenset[str]) -> list[str]:
        """Options set away from their defaults that a backend cannot honour (a knob set to off is
        honoured by every backend)."""
        default = GenerationOptions()
        return [f.name for f in fields(self)
                if f.name not in supported and getattr(self, f.name) != getattr(default, f.name)
                and getattr(self, f.name) != OFF.get(f.name, object())]


OFF = {"repetition_penalty": 1.0, "no_repeat_ngram_size": 0}  # the values that change nothing


class BackendError(Exception):
    """An expected backend failure, as one line with the next step."""

    exit_code = 1

    def __init__(self, message: str, kind: str = "error"):
        super().__init__(message)
        self.kind = kind  # missing_key | auth | rate_limit | timeout | network | safety | not_found | bad_stream | error


@dataclass
class StreamState:
    """What a stream reports besides its text: usage (token counts) and notes for the user."""

    usage: dict = field(default_factory=dict)
    finish_reason: str | None = None


class Backend(Protocol):
    name: str
    model: str
    supported_options: frozenset[str]

    def stream(self, messages: list[dict], options: GenerationOptions,
               cancel: threading.Event, state: StreamState) -> Iterator[str]: ...

    def count_tokens(self, text: str) -> int: ...


def approx_tokens(text: str) -> int:
    """For remote models without a local tokenizer: ~4 characters a token, rounded up."""
    return max(1, (len(text) + 3) // 4)


def redact(message: str, *secrets: str | None) -> str:
    """Remove keys from text that may be shown or logged (error messages echo URLs and headers)."""
    for secret in secrets:
        if secret:
            message = message.replace(secret, "[redacted]")
    return re.sub(r"(key=)[\w\-]+", r"\1[redacted]", message)
