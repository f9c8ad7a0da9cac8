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
from datetime import tzinfo
from typing import Callable

from assistant.backends import Backend, GenerationOptions, StreamState
from assistant.config import MEMORY_MODES
from assistant.failures import one_line
from assistant.localtime import person_tz
from assistant.notes import asks_about_now, asks_about_time
from assistant.prompt import PromptReport, build_prompt, pin_room
from assistant.standing import pins_for_prompt
from assistant.standing_proposal import proposes
from memory.changes import supersessions
from memory.errors import BadInput
from memory.forgetting import title_from
from memory.memory import Memory
from memory.recall import MAX_K, RecallFilter, RecallWeights
from memory.session import SessionMemory
from memory.timewindow import TimeWindow, parse_window
from memory.turn import Hit, to_iso, validate_text
from memory.turn_log import TurnLog

# What the engines call a reply that stopped at max_new_tokens: "length" (the local engines, the
# OpenAI protocol), "max_tokens" (Gemini's MAX_TOKENS).
CUT_AT_LIMIT = ("length", "max_tokens")
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
    cut: bool = False  # the reply reached the new-token limit: it may end mid-sentence
    superseded: dict[int, int] = field(default_factory=dict)  # recalled statements a newer one replaced
    window: TimeWindow | None = None  # the time the message named, which recall preferred
    window_label: str | None = None  # that window as the person reads it, in their time zone
    pins: list[Hit] = field(default_factory=list)  # the standing memories the prompt held
    proposal: int | None = None  # the stored message reads as a lasting instruction: proposed for pinning

    error_code: int = 1  # the exit status of the failure, when there is one (2: bad input)

    @property
    def exit_code(self) -> int:
        """What `memchat ask` exits with: 0; the failure's status (1, 2 for bad input); 130 if stopped."""
        return self.error_code if self.error else (130 if self.status == "stopped" else 0)

    def to_json(self) -> dict:
        return {
            "conversation_id": self.conversation_id, "answer": self.answer, "status": self.status,
            "memories": [h.to_json() for h in self.memories], "backend": self.backend, "model": self.model,
            "usage": self.usage, "timings": self.timings, "prompt": self.prompt.to_json() if self.prompt else None,
            "user_turn_id": self.user_turn_id, "reply_turn_id": self.reply_turn_id,
            "error": self.error, "warnings": self.warnings, "memory_mode": self.mode, "stored": self.stored,
            "cut_at_token_limit": self.cut,
            "superseded": [{"turn_id": old, "by": new} for old, new in self.superseded.items()],
            "window": None if self.window is None else {
                "phrase": self.window.phrase, "label": self.window_label,
                "start": to_iso(self.window.start), "end": to_iso(self.window.end)},
            "pins": [h.turn.id for h in self.pins], "pin_proposal": self.proposal,
        }


class ChatService:
    """The turn loop, with the model and the options it runs with. It keeps no conversation's state:
    the conversation (its id, memory mode, and the turns kept in this process only) is handed to
    `ask` by assistant/conversation.py, which every face drives."""

    def __init__(self, memory: Memory, backend: Backend, *, k: int = 3, token_budget: int = 2048,
                 options: GenerationOptions | None = None, recency_weight: float = 0.0, tz: tzinfo | None = None,
                 pin_tokens: int = 200):
        """`tz`: the person's time zone (the platform's when None): their today, their dates;
        `pin_tokens`: the part of the budget the standing memories may take (0: left out)."""
        self.memory = memory
        self.tz = tz or person_tz()
        self.backend = backend
        self.k = k
        self.token_budget = token_budget
        self.pin_tokens = pin_tokens
        self.options = options or GenerationOptions()
        self.weights = RecallWeights(recency=recency_weight)

    def ask(self, text: str, conversation_id: str | None = None, *, mode: str = "persistent",
            session: SessionMemory | None = None, use_memory: bool = True, store: bool = True,
            on_chunk: Callable[[str], None] | None = None, cancel: threading.Event | None = None) -> Reply:
        """`mode`: persistent (every turn stored), session (the conversation lives in `session`, this
        process's memory only: recalled from, never written to disk) or off (the message answered
        alone). `use_memory=False`: recall nothing from the store for this reply. `store=False`: keep
        this message and its reply out of the store; they stay in `session`, so the rest of the
        conversation can still refer to them."""
        check_mode(mode)
        validate_text(text)  # a chat message's limit, in every face (an import may store longer texts)
        session = session if session is not None else SessionMemory(self.memory.embedder)
        cancel = cancel or threading.Event()
        clock = _Clock()
        if mode == "off":  # stateless: no history, no recall, nothing kept
            log, conversation_id = None, None
        else:
            log = self.memory if store and mode == "persistent" else session
        recent = self._history(conversation_id, session)
        title = title_from(text)  # names the conversation if this turn is the first the store holds
        user_turn = log.remember(text, "user", conversation_id, conversation_title=title) if log else None
        conversation_id = user_turn.conversation_id if user_turn else conversation_id
        clock.lap("store_user_ms")

        now = time.time()
        hits: list[Hit] = []
        pins: list[Hit] = []
        superseded: dict[int, int] = {}
        window, messages, report, error, proposal = None, None, None, None, None
        try:  # the message is stored: from here on, whatever fails is recorded as a failed reply to it
            # The time the message names, parsed once here and passed down (recall prefers it; the
            # prompt dates its notes for it).
            window = parse_window(text, now, self.tz)
            dated = window is not None or asks_about_time(text)
            pinned: frozenset[int] = frozenset()
            if mode != "off" and use_memory:  # the standing memories that fit: every prompt's
                room = pin_room(text, self.token_budget, self.pin_tokens, self.backend.count_tokens, now, self.tz)
                pins, pinned = pins_for_prompt(self.memory, text, room, self.backend.count_tokens,
                                               *((now, self.tz) if dated else (None, None)))
            if mode != "off" and self.k > 0:
                seen = frozenset([*(t.id for t in recent), *([user_turn.id] if user_turn else []), *pinned])
                # The store (unless this reply recalls nothing from it), then this conversation's turns
                # kept in this process only: those are never recalled into another conversation.
                found = [recall_notes(self.memory, text, self.k, seen, self.weights, window=window)] if use_memory else []
                if session.has_conversation(conversation_id):
                    found.append(recall_notes(session, text, self.k, seen, self.weights, conversation_id, window))
                hits = interleave(found, self.k)
            clock.lap("recall_ms")
            superseded = supersessions(hits, recalled_vectors(hits, self.memory, session))
            messages, report = build_prompt(text, hits, [t for t in recent if t.status != "failed"],
                                            self.token_budget, self.backend.count_tokens, now=now, tz=self.tz,
                                            dated=dated, superseded=superseded,
                                            present=asks_about_now(text), window=window, pins=pins,
                                            pin_budget=self.pin_tokens)
        except Exception as exc:  # the store failed mid-way (a re-embed elsewhere, a full disk), or a bug
            error = one_line(exc)
        clock.lap("prompt_ms")

        chunks: list[str] = []
        state = StreamState()
        first_token_at = None
        try:
            for chunk in self.backend.stream(messages, self.options, cancel, state) if error is None else ():
                if first_token_at is None:
                    first_token_at = time.perf_counter()
                chunks.append(chunk)
                if on_chunk:
                    on_chunk(chunk)
        except Exception as exc:  # the backend's one line, or a bug in it: the message is kept, the reply failed
            error = one_line(exc)
        generation_ms = clock.lap("generate_ms")
        answer = "".join(chunks)
        status = "failed" if error else ("stopped" if cancel.is_set() else "ok")
        cut = status == "ok" and state.finish_reason in CUT_AT_LIMIT

        # What was said is kept; a reply that never came is recorded as such, not as an answer.
        stored_text = answer
        if not answer.strip():
            if status == "ok":
                status, error = "failed", "the model returned no text"
            stored_text = "(stopped before any text)" if status == "stopped" else f"(no reply: {error})"
        # Committed now; embedded once the person has the reply (Memory.embed_deferred, called by the
        # face after showing it, and at close), off the turn's critical path.
        later = {"embed_later": True} if log is self.memory else {}
        reply_turn = log.remember(
            stored_text, "assistant", conversation_id, **later, status=status, backend=self.backend.name,
            model=self.backend.model, tokens=state.usage.get("completion_tokens"),
            meta={"memories": [h.turn.id for h in hits if h.turn.id > 0], "usage": state.usage,
                  **({"error": error} if error else {}), **({"finish_reason": "length"} if cut else {})},
        ) if log else None
        clock.lap("store_reply_ms")
        if log is self.memory:  # after the reply: a message of several sentences may cost an encode or two
            proposal = self._proposal(text, user_turn.id)
            clock.lap("propose_ms")

        timings = clock.laps
        timings["overhead_ms"] = round(sum(v for k, v in timings.items() if k != "generate_ms"), 2)
        if first_token_at is not None:
            timings["first_token_ms"] = round((first_token_at - clock.started_generation) * 1000, 1)
        completion = state.usage.get("completion_tokens")
        if completion and generation_ms > 0:
            timings["tokens_per_s"] = round(completion / (generation_ms / 1000), 1)
        warnings = [f"the {self.backend.name} backend ignores {name}" for name in
                    self.options.unsupported(self.backend.supported_options)] + self.memory.take_notices()
        if cut:
            warnings.append(f"the reply was cut at the limit of {self.options.max_new_tokens} new tokens; "
                            "raise it with --max-new-tokens, MEMCHAT_MAX_NEW_TOKENS or the settings (F4)")
        return Reply(conversation_id=conversation_id, answer=answer, status=status, memories=hits,
                     backend=self.backend.name, model=self.backend.model, usage=state.usage, timings=timings,
                     prompt=report, user_turn_id=_stored_id(user_turn), reply_turn_id=_stored_id(reply_turn),
                     error=error, warnings=warnings, mode=mode, stored=log is self.memory, cut=cut,
                     superseded=superseded, window=window, window_label=window and window.label(self.tz),
                     pins=[h for h in pins if report and h.turn.id in report.pin_ids], proposal=proposal)

    def _proposal(self, text: str, turn_id: int) -> int | None:
        """The message's turn id if memchat should ask to keep it for every chat (proposed, never
        pinned without the person's word); None if not, or already pinned, or if reading it failed."""
        memory = self.memory
        try:
            lasting = proposes(text, memory.embedder, memory.provider.query_encoder(memory.embedder))
            return turn_id if lasting and text not in {t.text for t in memory.pins()} else None
        except Exception:  # a provider that fails mid-way: no proposal, the turn is stored all the same
            return None

    def _history(self, conversation_id: str | None, session: SessionMemory) -> list:
        """The conversation's latest turns: those stored, then those kept in this process only."""
        if conversation_id is None:
            return []
        stored = self.memory.turns(conversation_id, limit=RECENT_WINDOW, newest_first=True)[::-1]
        return (stored + session.turns(conversation_id))[-RECENT_WINDOW:]


def check_mode(mode: str) -> str:
    if mode not in MEMORY_MODES:
        raise BadInput(f"memory mode {mode!r}: use one of {', '.join(MEMORY_MODES)}")
    return mode


def recalled_vectors(hits: list[Hit], memory: Memory, session: SessionMemory | None) -> dict:
    """The recalled turns' vectors (for supersessions): stored ones from SQLite, this process's
    from the session. Shared with `memchat mcp`'s recall (assistant/mcp_tools.py)."""
    return {**memory.vectors(h.turn.id for h in hits if h.turn.id > 0),
            **(session.vectors(h.turn.id for h in hits if h.turn.id < 0) if session is not None else {})}


def _stored_id(turn) -> int | None:
    """A turn's id in the store; None for one kept in this process only (negative ids) or not kept."""
    return turn.id if turn is not None and turn.id > 0 else None


def interleave(lists: list[list[Hit]], k: int) -> list[Hit]:
    """Best of each source in turn (stored memories first), k in all: their scores are not comparable."""
    merged = [hit for rank in itertools.zip_longest(*lists) for hit in rank if hit is not None]
    return merged[:k]


def recall_notes(memory: TurnLog, text: str, k: int, exclude: frozenset[int] = frozenset(),
                 weights: RecallWeights | None = None, conversation_id: str | None = None,
                 window: TimeWindow | None = None, since: float | None = None,
                 until: float | None = None) -> list[Hit]:
    """The k memories a reply is given: what the person said is evidence; memchat's own earlier
    replies are not (a wrong reply, recalled, was repeated as fact), and a turn that only asks
    something tells nothing. Filtered after an unfiltered recall: a role filter in SQL sends
    dense search to an exact scan of every matching vector (46 ms a turn at 10k memories, not ~6).
    `since`/`until` (epoch seconds): a hard cut, as RecallFilter's (`memchat mcp`'s recall)."""
    flt = RecallFilter(conversation_id=conversation_id, exclude_ids=exclude, since=since, until=until)
    found = memory.recall(text, k=min(k * OVERFETCH, MAX_K), flt=flt, weights=weights, window=window)
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
                       tz=person_tz(settings.tz), pin_tokens=settings.pin_tokens)
