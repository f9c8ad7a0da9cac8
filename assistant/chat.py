"""The turn loop: remember the message → recall → build the prompt → stream the reply → remember it.

One ChatService serves `memchat ask` and the TUI alike. The user's turn is committed before the
backend is called, so a backend failure loses nothing; a failed or stopped reply is recorded with
that status, never as a normal answer.
"""
from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from assistant.backends import Backend, BackendError, GenerationOptions, StreamState
from assistant.prompt import PromptReport, build_prompt
from memory.memory import Memory
from memory.recall import RecallFilter, RecallWeights
from memory.turn import Hit

RECENT_WINDOW = 20  # turns of the current conversation sent as chat history (and not recalled)
OVERFETCH = 4  # recall this many times k, then keep the person's statements


@dataclass
class Reply:
    conversation_id: str
    answer: str
    status: str  # ok | failed | stopped
    memories: list[Hit]
    backend: str
    model: str
    usage: dict
    timings: dict
    prompt: PromptReport | None = None
    user_turn_id: int | None = None
    reply_turn_id: int | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "conversation_id": self.conversation_id, "answer": self.answer, "status": self.status,
            "memories": [h.to_json() for h in self.memories], "backend": self.backend, "model": self.model,
            "usage": self.usage, "timings": self.timings, "prompt": self.prompt.to_json() if self.prompt else None,
            "user_turn_id": self.user_turn_id, "reply_turn_id": self.reply_turn_id,
            "error": self.error, "warnings": self.warnings,
        }


class ChatService:
    def __init__(self, memory: Memory, backend: Backend, *, k: int = 3, token_budget: int = 2048,
                 options: GenerationOptions | None = None, recency_weight: float = 0.0):
        self.memory = memory
        self.backend = backend
        self.k = k
        self.token_budget = token_budget
        self.options = options or GenerationOptions()
        self.weights = RecallWeights(recency=recency_weight)

    def ask(self, text: str, conversation_id: str | None = None, *, use_memory: bool = True,
            on_chunk: Callable[[str], None] | None = None, cancel: threading.Event | None = None) -> Reply:
        cancel = cancel or threading.Event()
        clock = _Clock()
        recent = self.memory.turns(conversation_id, limit=RECENT_WINDOW, newest_first=True)[::-1] if conversation_id else []
        title = None if conversation_id else " ".join(text.split())[:60]  # a new conversation is named by its opening
        user_turn = self.memory.remember(text, "user", conversation_id, conversation_title=title)
        conversation_id = user_turn.conversation_id
        clock.lap("store_user_ms")

        hits: list[Hit] = []
        if use_memory and self.k > 0:
            seen = frozenset([user_turn.id, *(t.id for t in recent)])
            hits = recall_notes(self.memory, text, self.k, seen, self.weights)
        clock.lap("recall_ms")

        messages, report = build_prompt(text, hits, [t for t in recent if t.status != "failed"],
                                        self.token_budget, self.backend.count_tokens)
        clock.lap("prompt_ms")

        chunks: list[str] = []
        state = StreamState()
        error: str | None = None
        first_token_at = None
        try:
            for chunk in self.backend.stream(messages, self.options, cancel, state):
                if first_token_at is None:
                    first_token_at = time.perf_counter()
                chunks.append(chunk)
                if on_chunk:
                    on_chunk(chunk)
        except BackendError as exc:
            error = str(exc)
        generation_ms = clock.lap("generate_ms")
        answer = "".join(chunks)
        status = "failed" if error else ("stopped" if cancel.is_set() else "ok")

        # What was said is kept; a reply that never came is recorded as such, not as an answer.
        stored_text = answer
        if not answer.strip():
            if status == "ok":
                status, error = "failed", "the model returned no text"
            stored_text = "(stopped before any text)" if status == "stopped" else f"(no reply: {error})"
        reply_turn = self.memory.remember(
            stored_text, "assistant", conversation_id, status=status, backend=self.backend.name,
            model=self.backend.model, tokens=state.usage.get("completion_tokens"),
            meta={"memories": [h.turn.id for h in hits], "usage": state.usage, **({"error": error} if error else {})},
        )
        clock.lap("store_reply_ms")

        timings = clock.laps
        timings["overhead_ms"] = round(sum(v for k, v in timings.items() if k != "generate_ms"), 2)
        if first_token_at is not None:
            timings["first_token_ms"] = round((first_token_at - clock.started_generation) * 1000, 1)
        completion = state.usage.get("completion_tokens")
        if completion and generation_ms > 0:
            timings["tokens_per_s"] = round(completion / (generation_ms / 1000), 1)
        warnings = [f"the {self.backend.name} backend ignores {name}" for name in
                    self.options.unsupported(self.backend.supported_options)] + self.memory.take_notices()
        return Reply(conversation_id=conversation_id, answer=answer, status=status, memories=hits,
                     backend=self.backend.name, model=self.backend.model, usage=state.usage, timings=timings,
                     prompt=report, user_turn_id=user_turn.id, reply_turn_id=reply_turn.id, error=error,
                     warnings=warnings)


def recall_notes(memory: Memory, text: str, k: int, exclude: frozenset[int] = frozenset(),
                 weights: RecallWeights | None = None) -> list[Hit]:
    """The k memories a reply is given: what the person said is evidence; memchat's own earlier
    replies are not (a wrong reply, recalled, was repeated as fact), and a turn that only asks
    something tells nothing. Filtered after an unfiltered recall: a role filter in SQL sends
    dense search to an exact scan of every matching vector (46 ms a turn at 10k memories, not ~6)."""
    found = memory.recall(text, k=k * OVERFETCH, flt=RecallFilter(exclude_ids=exclude), weights=weights)
    return [h for h in found if h.turn.role == "user" and not only_questions(h.turn.text)][:k]


def only_questions(text: str) -> bool:
    """True for a turn in which every sentence asks something: it tells nothing about the person."""
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s.strip()]
    return bool(sentences) and all(s.rstrip().endswith("?") for s in sentences)


class _Clock:
    """Named laps in milliseconds; remembers when generation started for time-to-first-token."""

    def __init__(self):
        self._last = time.perf_counter()
        self.laps: dict[str, float] = {}
        self.started_generation = self._last

    def lap(self, name: str) -> float:
        now = time.perf_counter()
        self.laps[name] = round((now - self._last) * 1000, 2)
        self._last = now
        if name == "prompt_ms":
            self.started_generation = now
        return self.laps[name]


def service_from_settings(memory: Memory, backend: Backend, settings) -> ChatService:
    return ChatService(memory, backend, k=settings.k, token_budget=settings.token_budget,
                       options=GenerationOptions.from_settings(settings), recency_weight=settings.recency_weight)
