"""The turn loop: remember the message → recall → build the prompt → stream the reply → remember it.

One ChatService serves `memchat ask` and the TUI alike. The user's turn is committed before the
backend is called, so a backend failure loses nothing; a failed or stopped reply is recorded with
that status, never as a normal answer.
"""
from __future__ import annotations

import itertools
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from assistant.backends import Backend, BackendError, GenerationOptions, StreamState
from assistant.config import MEMORY_MODES
from assistant.prompt import PromptReport, build_prompt
from memory.errors import BadInput
from memory.forgetting import title_from
from memory.memory import Memory
from memory.recall import RecallFilter, RecallWeights
from memory.session import SessionMemory
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
    mode: str = "persistent"
    stored: bool = True  # False: the message and reply were kept out of the store

    def to_json(self) -> dict:
        return {
            "conversation_id": self.conversation_id, "answer": self.answer, "status": self.status,
            "memories": [h.to_json() for h in self.memories], "backend": self.backend, "model": self.model,
            "usage": self.usage, "timings": self.timings, "prompt": self.prompt.to_json() if self.prompt else None,
            "user_turn_id": self.user_turn_id, "reply_turn_id": self.reply_turn_id,
            "error": self.error, "warnings": self.warnings, "memory_mode": self.mode, "stored": self.stored,
        }


class ChatService:
    """`mode`: persistent (every turn stored), session (this conversation lives in this process's
    memory only: recalled from, never written to disk) or off (each message answered alone)."""

    def __init__(self, memory: Memory, backend: Backend, *, k: int = 3, token_budget: int = 2048,
                 options: GenerationOptions | None = None, recency_weight: float = 0.0,
                 mode: str = "persistent"):
        self.memory = memory
        self.backend = backend
        self.k = k
        self.token_budget = token_budget
        self.options = options or GenerationOptions()
        self.weights = RecallWeights(recency=recency_weight)
        self.session = SessionMemory(memory.embedder)
        self.mode = mode

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        if value not in MEMORY_MODES:
            raise BadInput(f"memory mode {value!r}: use one of {', '.join(MEMORY_MODES)}")
        self._mode = value

    def ask(self, text: str, conversation_id: str | None = None, *, use_memory: bool = True, store: bool = True,
            on_chunk: Callable[[str], None] | None = None, cancel: threading.Event | None = None) -> Reply:
        """`use_memory=False`: recall nothing from the store for this reply. `store=False`: keep this
        message and its reply out of the store; they stay in this process's memory, so the rest of
        the conversation can still refer to them."""
        cancel = cancel or threading.Event()
        clock = _Clock()
        mode = self.mode
        if mode == "off":  # stateless: no history, no recall, nothing kept
            log, conversation_id = None, None
        else:
            log = self.memory if store and mode == "persistent" else self.session
        recent = self._history(conversation_id)
        title = title_from(text)  # names the conversation if this turn is the first the store holds
        user_turn = log.remember(text, "user", conversation_id, conversation_title=title) if log else None
        conversation_id = user_turn.conversation_id if user_turn else conversation_id
        clock.lap("store_user_ms")

        hits: list[Hit] = []
        if mode != "off" and self.k > 0:
            seen = frozenset([*(t.id for t in recent), *([user_turn.id] if user_turn else [])])
            # The store (unless this reply recalls nothing from it), then this conversation's turns
            # kept in this process only: those are never recalled into another conversation.
            found = [recall_notes(self.memory, text, self.k, seen, self.weights)] if use_memory else []
            if self.session.has_conversation(conversation_id):
                found.append(recall_notes(self.session, text, self.k, seen, self.weights, conversation_id))
            hits = _interleave(found, self.k)
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
        reply_turn = log.remember(
            stored_text, "assistant", conversation_id, status=status, backend=self.backend.name,
            model=self.backend.model, tokens=state.usage.get("completion_tokens"),
            meta={"memories": [h.turn.id for h in hits if h.turn.id > 0], "usage": state.usage, **({"error": error} if error else {})},
        ) if log else None
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
                     prompt=report, user_turn_id=_stored_id(user_turn), reply_turn_id=_stored_id(reply_turn),
                     error=error, warnings=warnings, mode=mode, stored=log is self.memory)

    def _history(self, conversation_id: str | None) -> list:
        """The conversation's latest turns: those stored, then those kept in this process only."""
        if conversation_id is None:
            return []
        stored = self.memory.turns(conversation_id, limit=RECENT_WINDOW, newest_first=True)[::-1]
        return (stored + self.session.turns(conversation_id))[-RECENT_WINDOW:]


def _stored_id(turn) -> int | None:
    """A turn's id in the store; None for one kept in this process only (negative ids) or not kept."""
    return turn.id if turn is not None and turn.id > 0 else None


def _interleave(lists: list[list[Hit]], k: int) -> list[Hit]:
    """Best of each source in turn (stored memories first), k in all: their scores are not comparable."""
    merged = [hit for rank in itertools.zip_longest(*lists) for hit in rank if hit is not None]
    return merged[:k]


def recall_notes(memory: Memory | SessionMemory, text: str, k: int, exclude: frozenset[int] = frozenset(),
                 weights: RecallWeights | None = None, conversation_id: str | None = None) -> list[Hit]:
    """The k memories a reply is given: what the person said is evidence; memchat's own earlier
    replies are not (a wrong reply, recalled, was repeated as fact), and a turn that only asks
    something tells nothing. Filtered after an unfiltered recall: a role filter in SQL sends
    dense search to an exact scan of every matching vector (46 ms a turn at 10k memories, not ~6)."""
    flt = RecallFilter(conversation_id=conversation_id, exclude_ids=exclude)
    found = memory.recall(text, k=k * OVERFETCH, flt=flt, weights=weights)
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
                       options=GenerationOptions.from_settings(settings), recency_weight=settings.recency_weight,
                       mode=settings.memory_mode)
