"""The vector store as the memory uses it: when a store behind a network fails, the memory goes on.

A remote store is a cache of vectors SQLite already holds. When one cannot be reached, times out or
refuses the key, StoreGuard answers searches by exact inner product over SQLite's vectors (the
full-text side of recall is untouched), says once which store failed and why, leaves the store
alone for RETRY_AFTER_S before trying it again, and stops stamping the store's IndexState, so the
next open catches up every write the store missed. Local stores pass straight through.

A forget cannot wait for the next open: a TUI open all day would leave the forgotten vectors on
the service. So the ids of deletes that failed are kept, and sent before the next guarded call once
RETRY_AFTER_S has passed, and at close; once they go through, the state the forget asked to stamp
is stamped, so the next open finds the store current.
"""
from __future__ import annotations

import threading
import time
from typing import Callable

import numpy as np
from sqlalchemy import select
from sqlalchemy.engine import Engine

from memory.record import embeddings
from memory.stores import IndexState, StoreUnavailable, VectorStore

DEADLINE_S = 5.0  # a remote call slower than this counts as a failure (clients retry for a minute)
RETRY_AFTER_S = 30.0
EXACT_BATCH = 2_048  # vectors scored at a time by the fallback: ~3 MB at 384 dims, at any size


class StoreGuard:
    def __init__(self, store: VectorStore, engine: Engine, notice: Callable[[str], None]):
        self.store = store
        self.engine = engine
        self.notice = notice
        self.behind = False  # a write did not reach the store: its state must not be stamped current
        self._down_until = 0.0
        self._reported = False
        self._undeleted: set[int] = set()  # ids forgotten in SQLite whose delete did not reach the store
        self._unstamped: IndexState | None = None  # the state to stamp once they have
        self._retry_lock = threading.Lock()  # recalls run on several threads; one sends the retry
        self.fill_recent()

    def fill_recent(self) -> None:
        """An eventually consistent store's writes from moments ago, maybe by another process, may
        not be searchable yet: hand it their vectors from SQLite to merge into its answers."""
        recent = self.store.recent
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

    @property
    def approximate(self) -> bool:
        return self.store.approximate

    # -- guarded calls ---------------------------------------------------------------------------
    def _run(self, fn, *args):
        if not self.store.remote:
            return fn(*args)
        if time.monotonic() < self._down_until:
            raise StoreUnavailable("still down")
        if self._undeleted:
            self._retry_deletes()
        return self._call(fn, *args)

    def _call(self, fn, *args):
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

    def _retry_deletes(self) -> None:
        """Send the deletes that failed (StoreUnavailable while the store is still down), then the
        stamp the forget could not save."""
        with self._retry_lock:
            if not self._undeleted:
                return  # another thread sent them
            ids = np.array(sorted(self._undeleted), dtype=np.int64)
            self._call(self.store.delete, ids)
            self._undeleted.difference_update(ids.tolist())
            stamp, self._unstamped = self._unstamped, None
            if stamp is not None and not self.behind:
                try:
                    self._call(self.store.save, stamp)
                except StoreUnavailable:
                    self.behind = True
                    raise

    @property
    def deferred(self) -> bool:
        """Deletes that failed wait to be sent (the store was down when the turns were forgotten)."""
        return bool(self._undeleted)

    def retry_deferred(self) -> bool:
        """Send the deletes waiting, unless the store is still left alone after a failure; True when
        none waits any more. What a process does now and then while idle (the TUI, every
        RETRY_AFTER_S): a forgotten vector leaves the service when it is back, not at the next use."""
        if not self._undeleted or time.monotonic() < self._down_until:
            return not self._undeleted
        try:
            self._retry_deletes()
        except StoreUnavailable:
            return False
        return True

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
            self._undeleted.update(np.asarray(ids).tolist())  # sent again while this process runs

    def save(self, state: IndexState) -> None:
        if self.behind:
            return  # the store keeps its last good stamp; the next open catches up from it
        try:
            self._run(self.store.save, state)
        except StoreUnavailable:
            if self._undeleted:
                self._unstamped = state  # stamped once the deletes go through
            else:
                self.behind = True

    # -- the fallback ------------------------------------------------------------------------------
    def exact_search(self, query: np.ndarray, k: int, batch: int = EXACT_BATCH) -> tuple[np.ndarray, np.ndarray]:
        """Top-k by inner product over every vector in SQLite, read `batch` at a time with a running
        top k, so a million memories never sit in memory at once (they took 1.5 GB)."""
        query = np.asarray(query, dtype=np.float32)
        ids, scores = np.zeros(0, np.int64), np.zeros(0, np.float32)
        if k <= 0:
            return ids, scores
        with self.engine.connect() as conn:
            rows = conn.execute(select(embeddings.c.id, embeddings.c.vector))
            for part in rows.partitions(batch):
                part_ids = np.fromiter((r[0] for r in part), dtype=np.int64, count=len(part))
                vectors = np.frombuffer(b"".join(r[1] for r in part), dtype=np.float32).reshape(len(part), -1)
                ids, scores = np.concatenate([ids, part_ids]), np.concatenate([scores, vectors @ query])
                if len(ids) > k:
                    keep = np.argpartition(-scores, k)[:k]
                    ids, scores = ids[keep], scores[keep]
        order = np.argsort(-scores, kind="stable")
        return ids[order], scores[order]

    def close(self) -> None:
        """Deletes still missing are tried once more, down or not: the next open may be far off."""
        if self._undeleted:
            try:
                self._retry_deletes()
            except StoreUnavailable:
                pass  # the next open, finding the stamp old, rebuilds the store without them


class Unreachable(VectorStore):
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
