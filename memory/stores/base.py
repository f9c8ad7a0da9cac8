"""The vector-store protocol: what every index behind memchat implements.

A store holds (id, vector) pairs derived from the SQL record; ids are `embeddings.id`. It also
keeps the `IndexState` it reflects, so the memory facade can tell on open whether the store is
current, can catch up by adding rows with larger ids, or must be rebuilt from SQL.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

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


class VectorStore(Protocol):
    name: str
    dim: int | None  # None until the first vector arrives
    # True when other processes' writes land in the same store (a server); False when this process
    # holds its own copy (FAISS) or the only handle (an embedded store) and must catch up from SQL.
    shared: bool

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add unit vectors (float32, n x dim) under int64 ids."""

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (ids, inner-product scores) for one query vector, best first; ids -1 are padding."""

    def delete(self, ids: np.ndarray) -> None: ...

    def count(self) -> int: ...

    def reset(self, dim: int) -> None:
        """Drop everything (before a rebuild)."""

    def state(self) -> IndexState | None:
        """The state last saved, or None when the index is missing or unreadable."""

    def save(self, state: IndexState) -> None:
        """Make the current contents durable, stamped with `state`."""

    def close(self) -> None: ...
