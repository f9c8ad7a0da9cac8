"""The vector-store protocol: what every index behind memchat implements.

A store holds (id, vector) pairs derived from the SQL record; ids are `embeddings.id`. It also
keeps the `IndexState` it reflects, so the memory facade can tell on open whether the store is
current, can catch up by adding rows with larger ids, or must be rebuilt from SQL.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from memory.errors import MemoryError_


class StoreUnavailable(MemoryError_):
    """A remote store could not be reached, timed out or refused the key. Recall goes on without it
    (exact search over SQLite's vectors) and writes are caught up on the next open."""


class StoreBusy(StoreUnavailable):
    """An embedded store (Qdrant's local mode, Milvus Lite) is open in another process; they allow
    one. This process recalls by exact search over SQLite and writes to SQLite only; the process
    holding the store takes those writes in before its next search."""


class StoreRefused(StoreUnavailable):
    """The service refused the key: a setting to fix, not an outage to ride out."""


@dataclass(frozen=True)
class IndexState:
    """Which SQL state an index reflects: bumped `generation` on deletes, highest vector id added."""

    generation: int
    max_id: int
    count: int


def batches(ids: np.ndarray, vectors: np.ndarray, size: int):
    """(ids, float32 vectors) in slices of at most `size`: what a store sends per request."""
    vectors = np.asarray(vectors, dtype=np.float32)
    for start in range(0, len(ids), size):
        yield np.asarray(ids[start:start + size]), vectors[start:start + size]


class VectorStore(ABC):
    """The base every store subclasses: the methods each implements, and the capabilities the
    memory reads (memory/vector_index.py, memory/store_guard.py, stats and the bench), with the
    defaults of a store in the data dir that one process holds."""

    name: str
    dim: int | None  # None until the first vector arrives
    index_kind: str  # what `memchat memory stats` and the bench call its index ("flat", "hnsw", ...)
    # True when other processes' writes land in the same store (a server); False when this process
    # holds its own copy (FAISS) or the only handle (an embedded store) and must catch up from SQL.
    shared: bool = False
    # Behind a network: calls go through memory/store_guard.py, which falls back to exact search.
    remote: bool = False
    # A save writes the whole index (FAISS): memory/vector_index.py lets it lag SQLite a little.
    rewrites_on_save: bool = False
    # A remote.RecentWrites (Pinecone): writes acknowledged but maybe not searchable yet, merged
    # into its answers; the guard hands it their vectors from SQLite.
    recent = None
    location: str = "data dir"  # where the vectors live, for the bench's table
    # Scores from compressed vectors (FAISS IVF-SQ8): recall re-scores candidates from SQLite.
    approximate: bool = False

    @abstractmethod
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add unit vectors (float32, n x dim) under int64 ids."""

    @abstractmethod
    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (ids, inner-product scores) for one query vector, best first; ids -1 are padding."""

    @abstractmethod
    def delete(self, ids: np.ndarray) -> None:
        """Remove these ids (ids it does not hold are ignored)."""

    @abstractmethod
    def count(self) -> int:
        """How many vectors it holds."""

    @abstractmethod
    def reset(self, dim: int | None) -> None:
        """Drop everything (before a rebuild)."""

    @abstractmethod
    def state(self) -> IndexState | None:
        """The state last saved, or None when the index is missing or unreadable."""

    @abstractmethod
    def save(self, state: IndexState) -> None:
        """Make the current contents durable, stamped with `state`."""

    @abstractmethod
    def close(self) -> None:
        """Let go of files, connections and servers."""

    def reload(self) -> IndexState | None:
        """After another process's forget: take in what it saved and return that state (None: rebuild).
        A store this process holds the only handle to has nothing to re-read."""
        return self.state()

    def disk_bytes(self) -> int | None:
        """Bytes on this machine's disk, or None where the disk is not ours to measure (a server)."""
        return None
