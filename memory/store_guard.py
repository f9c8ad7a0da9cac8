"""The vector store as the memory uses it: when a store behind a network fails, the memory goes on.

A remote store is a cache of vectors SQLite already holds. When one cannot be reached, times out or
refuses the key, StoreGuard answers searches by exact inner product over SQLite's vectors (the
full-text side of recall is untouched), says once which store failed and why, leaves the store
alone for RETRY_AFTER_S before trying it again, and stops stamping the store's IndexState, so the
next open catches up every write the store missed. Local stores pass straight through.
"""
from __future__ import annotations

import threading
import time
from typing import Callable

import numpy as np
from sqlalchemy import select
from sqlalchemy.engine import Engine

from memory import indexing
from memory.record import embeddings
from memory.stores import IndexState, StoreUnavailable

DEADLINE_S = 5.0  # a remote call slower than this counts as a failure (clients retry for a minute)
RETRY_AFTER_S = 30.0


class StoreGuard:
    def __init__(self, store, engine: Engine, notice: Callable[[str], None]):
        self.store = store
        self.engine = engine
        self.notice = notice
        self.remote = bool(getattr(store, "remote", False))
        self.behind = False  # a write did not reach the store: its state must not be stamped current
        self._down_until = 0.0
        self._reported = False
        self._exact_lock = threading.Lock()
        self._exact: tuple[IndexState, np.ndarray, np.ndarray] | None = None
        self.fill_recent()

    def fill_recent(self) -> None:
        """An eventually consistent store's writes from moments ago, maybe by another process, may
        not be searchable yet: hand it their vectors from SQLite to merge into its answers."""
        recent = getattr(self.store, "recent", None)
        if recent is None or not recent.waiting:
            return
        with self.engine.connect() as conn:
            rows = conn.execute(select(embeddings.c.id, embeddings.c.vector)
                                .where(embeddings.c.id.in_(sorted(recent.waiting)))).all()
        if rows:
            recent.fill([r[0] for r in rows], np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32)
                        .reshape(len(rows), -1))

    @property
    def dim(self):
        return self.store.dim

    # -- guarded calls ---------------------------------------------------------------------------
    def _run(self, fn, *args):
        if not self.remote:
            return fn(*args)
        if time.monotonic() < self._down_until:
            raise StoreUnavailable("still down")
        outcome: dict = {}

        def call() -> None:
            try:
                outcome["value"] = fn(*args)
            except BaseException as exc:  # handed to the caller's thread below
                outcome["error"] = exc

        # A daemon thread, not a pool: a client still retrying a dead server (Weaviate's retries for
        # a minute) must not hold the process open at exit.
        worker = threading.Thread(target=call, name=f"memchat-{self.store.name}", daemon=True)
        worker.start()
        worker.join(DEADLINE_S)
        if worker.is_alive():
            self._failed(StoreUnavailable(f"{self.store.name} did not answer within {DEADLINE_S:.0f} s"))
        elif isinstance(outcome.get("error"), StoreUnavailable):
            self._failed(outcome["error"])
        elif "error" in outcome:
            raise outcome["error"]
        else:
            return outcome.get("value")
        raise StoreUnavailable("down")

    def mark_down(self, exc: StoreUnavailable) -> None:
        """The store failed outside a guarded call (while opening): treat it as down, writes missed."""
        self.behind = True
        self._failed(exc)

    def _failed(self, exc: StoreUnavailable) -> None:
        self._down_until = time.monotonic() + RETRY_AFTER_S
        if not self._reported:
            self._reported = True
            self.notice(f"{exc}; recalling by exact search over SQLite's vectors, and the store catches up "
                        f"on the next open")

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        try:
            return self._run(self.store.search, query, k)
        except StoreUnavailable:
            return self.exact_search(query, k)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        try:
            self._run(self.store.add, ids, vectors)
        except StoreUnavailable:
            self.behind = True

    def delete(self, ids: np.ndarray) -> None:
        try:
            self._run(self.store.delete, ids)
        except StoreUnavailable:
            self.behind = True

    def save(self, state: IndexState) -> None:
        if self.behind:
            return  # the store keeps its last good stamp; the next open catches up from it
        try:
            self._run(self.store.save, state)
        except StoreUnavailable:
            self.behind = True

    # -- the fallback ------------------------------------------------------------------------------
    def exact_search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k by inner product over every vector in SQLite (loaded once per SQL state)."""
        with self.engine.connect() as conn:
            truth = indexing.sql_state(conn)
            with self._exact_lock:
                if self._exact is None or self._exact[0] != truth:
                    rows = conn.execute(select(embeddings.c.id, embeddings.c.vector).order_by(embeddings.c.id)).all()
                    ids = np.array([r[0] for r in rows], dtype=np.int64)
                    matrix = (np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)
                              if rows else np.zeros((0, 1), np.float32))
                    self._exact = (truth, ids, matrix)
                _, ids, matrix = self._exact
        if not len(ids):
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        scores = matrix @ np.asarray(query, dtype=np.float32)
        top = np.argsort(-scores)[:k]
        return ids[top], scores[top]

    def close(self) -> None:
        self._exact = None


class Unreachable:
    """Stands in for a hosted store that could not be opened (an outage, not a refused key), so
    the memory opens anyway: every call fails into the guard's fallback, and the next open that
    reaches the service catches it up."""

    remote = True
    shared = True  # nothing held here to catch up: every search is answered from SQLite
    index_kind = "unreachable"

    def __init__(self, name: str, dim: int | None, reason: str):
        self.name, self.dim, self.reason = name, dim, reason

    def _down(self, *args):
        raise StoreUnavailable(self.reason)

    add = search = delete = count = reset = state = save = _down

    def close(self) -> None:
        pass
