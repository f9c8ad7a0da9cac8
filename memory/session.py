"""Session memory: an incognito conversation's turns, held in this process's memory only.

Nothing here touches the disk: turns and their vectors live in lists and vanish with the process.
It implements the chat loop's TurnLog protocol (memory/turn_log.py) as Memory does, so a session
conversation is recalled from like a stored one. Its turns have
negative ids, so they can never be mistaken for a stored turn's (or excluded in its place).
"""
from __future__ import annotations

import itertools
import time
import uuid

import numpy as np

from memory.errors import EmbeddingUnavailable
from memory.recall import WINDOW_MARGIN, RecallFilter, RecallWeights, check_k
from memory.timewindow import TimeWindow, strip_phrase
from memory.turn import Hit, Turn, validate_role, validate_text


class SessionMemory:
    def __init__(self, embedder):
        self.embedder = embedder
        self._turns: list[Turn] = []
        self._vectors: list[np.ndarray] = []
        self._ids = itertools.count(-1, -1)

    def remember(self, text_: str, role: str = "user", conversation_id: str | None = None,
                 conversation_title: str | None = None, **fields) -> Turn:
        """A session has no titles: `conversation_title` is taken and dropped, as Memory takes it."""
        text = validate_text(text_)
        validate_role(role)
        turn = Turn(id=next(self._ids), conversation_id=conversation_id or uuid.uuid4().hex[:12],
                    role=role, text=text, created_at=time.time(), **fields)
        self._turns.append(turn)
        # A failed reply's placeholder is kept for the transcript but is not worth recalling.
        self._vectors.append(self._vector(text) if turn.status == "ok" else None)
        return turn

    def _vector(self, text: str) -> np.ndarray | None:
        try:
            return self.embedder.encode_query(text)
        except EmbeddingUnavailable:  # a provider that is down: the turn is kept, not recallable
            return None

    def turns(self, conversation_id: str | None = None, limit: int | None = None, offset: int = 0,
              newest_first: bool = False) -> list[Turn]:
        found = [t for t in self._turns if conversation_id is None or t.conversation_id == conversation_id]
        if newest_first:
            found.reverse()
        return found[offset:offset + limit] if limit is not None else found[offset:]

    def vectors(self, turn_ids) -> dict[int, np.ndarray]:
        """Each session turn's unit vector, by id (one without a vector is left out)."""
        wanted = set(turn_ids)
        return {t.id: v for t, v in zip(self._turns, self._vectors) if t.id in wanted and v is not None}

    def has_conversation(self, conversation_id: str) -> bool:
        return any(t.conversation_id == conversation_id for t in self._turns)

    def recall(self, query: str, k: int = 10, flt: RecallFilter | None = None,
               weights: RecallWeights | None = None, window: TimeWindow | None = None) -> list[Hit]:
        """The k session turns closest in meaning to `query` (cosine; a session is small); with a
        `window`, the relevant ones inside it first, as Memory.recall does (memory/recall.py)."""
        check_k(k)
        flt = flt or RecallFilter()
        candidates = [(t, v) for t, v in zip(self._turns, self._vectors)
                      if v is not None and t.id not in flt.exclude_ids
                      and (flt.conversation_id is None or t.conversation_id == flt.conversation_id)
                      and (flt.role is None or t.role == flt.role)
                      and (flt.since is None or t.created_at >= flt.since)
                      and (flt.until is None or t.created_at < flt.until)]
        if not candidates:
            return []
        q = self._vector(strip_phrase(query, window) or query)
        if q is None:
            return []
        scores = np.stack([v for _, v in candidates]) @ q
        order = np.argsort(-scores, kind="stable").tolist()
        inside = [] if window is None else [  # in the window and near the best match: first
            i for i in order if candidates[i][0].created_at in window and scores[i] >= scores[order[0]] - WINDOW_MARGIN]
        order = inside + [i for i in order if i not in inside]
        hits = []
        for rank, i in enumerate(order[:k], start=1):
            signals = {"session": rank, **({"window": rank} if i in inside else {})}
            hits.append(Hit(candidates[i][0], float(scores[i]), signals, float(scores[i])))
        return hits
