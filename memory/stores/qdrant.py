"""Qdrant store through the official `qdrant-client`: its local mode in `<data dir>/qdrant` by
default, or a Qdrant server / Qdrant Cloud at MEMCHAT_QDRANT_URL (+ QDRANT_API_KEY), same code.

Local mode is qdrant-client's in-process implementation of the API a Qdrant server serves (exact
search in numpy, points pickled into SQLite): right for trying Qdrant out and for tests, not a
measure of a server's speed, and `memchat bench` labels it so. One collection holds (id, vector)
with cosine distance; a second, one-point collection holds the IndexState. SQLite is the truth.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from memory.errors import MemoryError_
from memory.stores import remote
from memory.stores.base import IndexState, StoreBusy, VectorStore, batches

BATCH = 1_000  # points per upsert: well under a server's 32 MB request limit at 384 dims
TIMEOUT_S = 10


class QdrantStore(VectorStore):
    name = "qdrant"

    def __init__(self, data_dir: Path, dim: int | None, store_id: str, url: str | None = None,
                 api_key: str | None = None):
        try:
            from qdrant_client import QdrantClient
        except ImportError:
            raise MemoryError_("the qdrant store needs qdrant-client: pip install qdrant-client") from None
        self._secrets = (api_key or "",)
        self._path: Path | None = None  # local mode's folder
        self.remote = bool(url)  # a server's failures fall back to exact search (memory/store_guard.py)
        self.shared = bool(url)  # local mode: one process at a time (qdrant-client locks the folder)
        if url:
            self.client = QdrantClient(url=url, api_key=api_key or None, timeout=TIMEOUT_S)
            self.location = url
            self.index_kind = "hnsw"
        else:
            path = self._path = Path(data_dir) / "qdrant"
            try:
                self.client = QdrantClient(path=str(path))
            except RuntimeError as exc:  # another process holds local mode's lock on the folder
                if "already accessed" in str(exc):
                    raise StoreBusy(f"Qdrant's local store in {path} is open in another memchat process") from None
                raise MemoryError_(f"cannot open Qdrant's local store at {path}: {exc}") from None
            self.location = f"local mode in {path} (in-process, not a Qdrant server)"
            self.index_kind = "local mode (exact)"
        self.collection = f"memchat_vectors_{store_id}"
        self.state_collection = f"memchat_state_{store_id}"
        self.dim = None
        info = self._call("open", lambda: (self.client.collection_exists(self.collection)
                                           and self.client.get_collection(self.collection)))
        if info:
            self.dim = int(info.config.params.vectors.size)
        elif dim is not None:
            self._create(dim)
        self._call("open", self._ensure_state_collection)

    def _call(self, what: str, fn):
        return remote.call(fn, store="qdrant", what=what, status_of=_status, secrets=self._secrets,
                           key_var="QDRANT_API_KEY")

    def _ensure_state_collection(self) -> None:
        from qdrant_client import models

        if not self.client.collection_exists(self.state_collection):
            self.client.create_collection(self.state_collection,
                                          vectors_config=models.VectorParams(size=1, distance=models.Distance.DOT))

    def _create(self, dim: int) -> None:
        from qdrant_client import models

        self._call("create", lambda: self.client.create_collection(
            self.collection, vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE)))
        self.dim = dim

    def reset(self, dim: int | None) -> None:
        from qdrant_client import models

        def drop():
            if self.client.collection_exists(self.collection):
                self.client.delete_collection(self.collection)
            self.client.delete(self.state_collection, points_selector=models.PointIdsList(points=[0]))

        self._call("reset", drop)
        self.dim = None
        if dim:
            self._create(dim)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        from qdrant_client import models

        if len(ids) == 0:
            return
        if self.dim is None:
            self._create(vectors.shape[1])
        for chunk_ids, chunk in batches(ids, vectors, BATCH):
            batch = models.Batch(ids=chunk_ids.tolist(), vectors=chunk.tolist())
            with warnings.catch_warnings():  # local mode warns past 20k points; the bench says so itself
                warnings.simplefilter("ignore", UserWarning)
                self._call("add", lambda: self.client.upsert(self.collection, points=batch, wait=True))

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self.dim is None or k <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        query = np.asarray(query, dtype=np.float32).tolist()
        points = self._call("search", lambda: self.client.query_points(
            self.collection, query=query, limit=k, with_payload=False).points)
        return (np.array([p.id for p in points], dtype=np.int64),
                np.array([p.score for p in points], dtype=np.float32))

    def delete(self, ids: np.ndarray) -> None:
        from qdrant_client import models

        if self.dim is not None and len(ids):
            selector = models.PointIdsList(points=[int(i) for i in ids])
            self._call("delete", lambda: self.client.delete(self.collection, points_selector=selector, wait=True))

    def count(self) -> int:
        if self.dim is None:
            return 0
        return int(self._call("count", lambda: self.client.count(self.collection, exact=True).count))

    def state(self) -> IndexState | None:
        points = self._call("open", lambda: self.client.retrieve(self.state_collection, ids=[0], with_payload=True))
        if not points:
            return None
        p = points[0].payload
        return IndexState(int(p["generation"]), int(p["max_id"]), int(p["count"]))

    def save(self, state: IndexState) -> None:
        from qdrant_client import models

        point = models.PointStruct(id=0, vector=[1.0], payload={"generation": state.generation,
                                                              "max_id": state.max_id, "count": state.count})
        self._call("save", lambda: self.client.upsert(self.state_collection, points=[point], wait=True))

    def disk_bytes(self) -> int | None:
        if self._path is None:
            return None  # a server's disk is not ours to measure
        return sum(p.stat().st_size for p in self._path.rglob("*") if p.is_file())

    def close(self) -> None:
        self.client.close()


def _status(exc: Exception) -> int | None:
    status = getattr(exc, "status_code", None)
    return int(status) if isinstance(status, int) else None
