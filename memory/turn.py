"""Plain records that cross the memory boundary: a stored Turn, a NewTurn to store, a recall Hit."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone

from memory.errors import BadInput

ROLES = ("user", "assistant", "system")
# The longest chat message (`memchat ask`, the TUI), in characters: ~25k tokens, past anything typed.
MAX_MESSAGE_CHARS = 100_000
# The longest turn memchat stores (an import, `memory add`): a log or document pasted into a chat
# export. It is embedded in windows (Embedder.split): 1M characters is ~1,300 windows, about
# 3 minutes on 2 busy cores (README). Longer input is refused, never truncated, so the user knows.
MAX_TURN_CHARS = 1_000_000


def validate_text(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """Return `text` if it can be stored as one turn of at most `limit` characters, else raise
    BadInput saying why. The default is a chat message's limit; storing allows MAX_TURN_CHARS."""
    if not isinstance(text, str) or not text.strip():
        raise BadInput("empty text: nothing to store")
    if len(text) > limit:
        raise BadInput(f"text is {len(text):,} characters; the limit is {limit:,}")
    try:
        text.encode("utf-8")  # lone surrogates are what invalid UTF-8 bytes become in argv/stdin
    except UnicodeEncodeError:
        raise BadInput("text is not valid UTF-8") from None
    if "\x00" in text:
        raise BadInput("text contains a NUL character")
    return text


def validate_role(role: str) -> str:
    if role not in ROLES:
        raise BadInput(f"unknown role {role!r}; use one of: {', '.join(ROLES)}")
    return role


def to_iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat()


def from_iso(value: str) -> float:
    """ISO 8601 to epoch seconds; a timestamp without an offset is taken as UTC."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def content_key(conversation_id: str, role: str, created_at: float, text: str,
                occurrence: int | None = None) -> str:
    """The identity of a turn for de-duplication: the same record imported twice is stored once.

    A turn with a time of its own is (conversation, role, time, text), as every store has it. An
    imported line without a time is (conversation, role, `occurrence`, text): its stored time is a
    guess (the file's mtime) and no part of it, so a touched or copied file adds nothing again."""
    when = round(created_at, 6) if occurrence is None else {"untimed": occurrence}
    payload = json.dumps([conversation_id, role, when, text], ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass
class NewTurn:
    text: str
    role: str = "user"
    conversation_id: str | None = None
    created_at: float | None = None  # epoch seconds; now when None
    status: str = "ok"
    backend: str | None = None
    model: str | None = None
    tokens: int | None = None
    meta: dict = field(default_factory=dict)
    id: int | None = None  # kept on import when that id is free
    conversation_title: str | None = None
    # A new conversation's times as an export gives them; None: from its turns.
    conversation_created_at: float | None = None
    conversation_updated_at: float | None = None
    profile: str | None = None  # the profile an export says it came from; the importer chooses where it goes
    # An imported line without a time: its number among the file's untimed lines of the same
    # (conversation, role, text), which identifies it (content_key) in place of a time.
    occurrence: int | None = None
    pinned_at: float | None = None  # a standing memory since then (an export says so): pinned with the turn


@dataclass
class Turn:
    id: int
    conversation_id: str
    role: str
    text: str
    created_at: float
    status: str = "ok"
    backend: str | None = None
    model: str | None = None
    tokens: int | None = None
    meta: dict = field(default_factory=dict)
    pinned_at: float | None = None  # epoch seconds, UTC: since when it is a standing memory (memory/pins.py)

    @property
    def created_iso(self) -> str:
        return to_iso(self.created_at)

    def to_json(self) -> dict:
        data = {
            "id": self.id,
            "conversation_id": self.conversation_id,
            "role": self.role,
            "text": self.text,
            "created_at": self.created_iso,
            "status": self.status,
            "meta": self.meta,
        }
        for key in ("backend", "model", "tokens"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        if self.pinned_at is not None:
            data["pinned_at"] = to_iso(self.pinned_at)
        return data


@dataclass
class Hit:
    """One recalled turn: `score` is the fused rank score; `signals` says which retrievers found it
    and at what rank (1 = best); `similarity` is the cosine from the dense signal when it found it."""

    turn: Turn
    score: float
    signals: dict[str, int]
    similarity: float | None = None

    def to_json(self) -> dict:
        data = self.turn.to_json()
        data.update(score=round(self.score, 6), signals=self.signals)
        if self.similarity is not None:
            data["similarity"] = round(self.similarity, 4)
        return data
