"""What the chat loop needs of a memory, as one typed protocol: `Memory` (SQLite and a vector index)
and `SessionMemory` (this process's memory only, for incognito and private turns) both implement it,
so the loop treats a stored and an incognito conversation alike."""
from __future__ import annotations

from typing import Protocol, runtime_checkable

from memory.recall import RecallFilter, RecallWeights
from memory.timewindow import TimeWindow
from memory.turn import Hit, Turn


@runtime_checkable
class TurnLog(Protocol):
    def remember(self, text_: str, role: str = "user", conversation_id: str | None = None, **fields) -> Turn:
        """Keep one turn; `fields` are NewTurn's (status, backend, model, tokens, meta, conversation_title)."""

    def turns(self, conversation_id: str | None = None, limit: int | None = None, offset: int = 0,
              newest_first: bool = False) -> list[Turn]:
        """A conversation's turns (all turns when None), oldest first unless `newest_first`."""

    def has_conversation(self, conversation_id: str) -> bool: ...

    def vectors(self, turn_ids) -> dict:
        """Each turn's unit vector (numpy, float32) by id; turns without one are left out."""

    def recall(self, query: str, k: int = 10, flt: RecallFilter | None = None,
               weights: RecallWeights | None = None, window: TimeWindow | None = None) -> list[Hit]:
        """The k turns that best answer `query`, best first; those inside `window` (the time the
        query names), when relevant, before the rest; such hits carry signals["window"]."""
