"""What the stores behind a network share: retries with backoff, one-line failures that never
carry a key, and exact search over vectors written but not yet searchable.

A remote store is a cache of vectors SQLite already holds, so a failure here is never fatal:
callers raise StoreUnavailable, recall falls back to exact search over SQLite's vectors, and the
next open catches the store up.
"""
from __future__ import annotations

import random
import threading
import time
from typing import Callable

import numpy as np

from memory.stores.base import StoreRefused, StoreUnavailable

RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})  # what the services document as retryable
ATTEMPTS = 4


def call(fn: Callable, *, store: str, what: str, status_of: Callable[[Exception], int | None],
         secrets: tuple[str, ...] = (), key_var: str = "", attempts: int = ATTEMPTS,
         sleep: Callable[[float], None] = time.sleep, unavailable: type[Exception] = StoreUnavailable,
         refused: type[Exception] = StoreRefused, refuses: Callable[[int | None], bool] = lambda s: s in (401, 403)):
    """fn(), retried with jittered exponential backoff on a retryable status; any failure left
    becomes one line naming the service (`store`) and the operation, with keys scrubbed: `refused`
    where `refuses(status)` (a wrong key, by default), `unavailable` otherwise."""
    for attempt in range(attempts):
        try:
            return fn()
        except (unavailable, refused):
            raise
        except Exception as exc:  # every SDK has its own exception tree; classified by status below
            status = status_of(exc)
            if status in RETRY_STATUS and attempt < attempts - 1:
                sleep(min(4.0, 0.25 * 2 ** attempt) * (1 + random.random()))
                continue
            kind = refused if refuses(status) else unavailable
            raise kind(describe_failure(store, what, exc, status, secrets, key_var)) from None


def describe_failure(store: str, what: str, exc: Exception, status: int | None, secrets: tuple[str, ...],
                     key_var: str) -> str:
    if status in (401, 403):
        return f"{store} refused the API key ({status}) during {what}; check {key_var or 'the key'}"
    detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    for secret in secrets:
        if secret:
            detail = detail.replace(secret, "***")
    where = f"HTTP {status}" if status else type(exc).__name__
    return f"{store} failed during {what} ({where}): {detail}"


class RecentWrites:
    """Vectors a service acknowledged but may not serve from search yet (Pinecone is eventually
    consistent). Searches merge them in by exact inner product for `settle_s` seconds; deleted ids
    are hidden from the service's answers for as long.

    Kept across processes as ids and times only (`to_json`/`from_json`): a process that opens the
    store gets the ids another wrote moments ago in `waiting`, and the memory hands their vectors
    from SQLite back through `fill` (memory/store_guard.py), so the next recall finds them anywhere.
    """

    def __init__(self, settle_s: float):
        self.settle_s = settle_s
        self._lock = threading.Lock()  # searches run on the store guard's threads
        self._added: dict[int, tuple[float, np.ndarray]] = {}
        self._deleted: dict[int, float] = {}
        self.waiting: dict[int, float] = {}  # written by an earlier process: id -> when; vectors to fill

    def added(self, ids: np.ndarray, vectors: np.ndarray, at: list[float] | None = None) -> None:
        now = time.time()
        with self._lock:
            for n, (i, v) in enumerate(zip(np.asarray(ids).tolist(), vectors)):
                self._added[i] = (at[n] if at else now, np.asarray(v, dtype=np.float32))
                self._deleted.pop(i, None)
                self.waiting.pop(i, None)

    def fill(self, ids: list[int], vectors: np.ndarray) -> None:
        """Vectors (from SQLite) for ids in `waiting`; an id SQLite no longer has is simply dropped."""
        self.added(np.array(ids, dtype=np.int64), vectors, at=[self.waiting[i] for i in ids])

    def deleted(self, ids: np.ndarray) -> None:
        now = time.time()
        with self._lock:
            for i in np.asarray(ids).tolist():
                self._added.pop(i, None)
                self.waiting.pop(i, None)
                self._deleted[i] = now

    def clear(self) -> None:
        with self._lock:
            self._added.clear()
            self._deleted.clear()
            self.waiting.clear()

    def hidden(self) -> int:
        """How many ids the service may still return though deleted (search asks for as many more)."""
        return len(self._deleted)

    def _expire(self) -> None:
        cutoff = time.time() - self.settle_s
        self._added = {i: tv for i, tv in self._added.items() if tv[0] >= cutoff}
        self._deleted = {i: t for i, t in self._deleted.items() if t >= cutoff}
        self.waiting = {i: t for i, t in self.waiting.items() if t >= cutoff}

    def to_json(self) -> dict:
        with self._lock:
            self._expire()
            added = {str(i): t for i, (t, _) in self._added.items()} | {str(i): t for i, t in self.waiting.items()}
            return {"added": added, "deleted": {str(i): t for i, t in self._deleted.items()}}

    def from_json(self, saved: dict) -> None:
        with self._lock:
            self.waiting = {int(i): float(t) for i, t in (saved.get("added") or {}).items()}
            self._deleted = {int(i): float(t) for i, t in (saved.get("deleted") or {}).items()}
            self._expire()

    def merge(self, ids: np.ndarray, scores: np.ndarray, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The service's top k with recent additions scored exactly and recent deletions removed."""
        with self._lock:
            self._expire()
            best = {i: s for i, s in zip(ids.tolist(), scores.tolist()) if i not in self._deleted and i >= 0}
            for i, (_, vector) in self._added.items():
                best[i] = float(vector @ query)
        top = sorted(best.items(), key=lambda item: -item[1])[:k]
        return (np.array([i for i, _ in top], dtype=np.int64), np.array([s for _, s in top], dtype=np.float32))
