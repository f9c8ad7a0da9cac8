"""Milvus store through `pymilvus.MilvusClient`: Milvus Lite locally, a Milvus server or Zilliz
Cloud with MEMCHAT_MILVUS_URI (and MEMCHAT_MILVUS_TOKEN) — the same code either way.

Milvus Lite keeps its data in `<data dir>/milvus.db`. A collection holds (id, vector) with inner
product; a second, tiny collection holds the IndexState (Milvus requires a vector field in every
collection, so it carries a 2-d placeholder). As with every store, SQLite is the source of truth.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from memory.errors import MemoryError_
from memory.stores.base import IndexState, StoreBusy, VectorStore, batches

BATCH = 5_000
_OPENED_HERE: set[str] = set()  # Milvus Lite folders this process has opened


class MilvusStore(VectorStore):
    name = "milvus"
    index_kind = "autoindex"  # Milvus Lite serves it as exact (FLAT) search; a cluster builds an ANN index

    def __init__(self, data_dir: Path, dim: int | None, store_id: str, uri: str | None = None,
                 token: str | None = None):
        try:
            from pymilvus import MilvusClient
        except ImportError:
            raise MemoryError_("the milvus store needs pymilvus (and milvus-lite for a local file): "
                               "pip install pymilvus milvus-lite") from None
        self.uri = uri or str(Path(data_dir) / "milvus.db")
        self.shared = not self.uri.endswith(".db")  # a ".db" path is Milvus Lite: one process at a time
        # Asked before pymilvus tries (it logs a traceback); this process's own Milvus Lite keeps
        # the folder locked after its clients close, and reopening it here is fine.
        if not self.shared and self.uri not in _OPENED_HERE and _locked(Path(self.uri) / "LOCK"):
            raise StoreBusy(f"Milvus Lite's store {self.uri} is open in another memchat process")
        try:
            self.client = MilvusClient(uri=self.uri, token=token or "")
            _OPENED_HERE.add(self.uri)
        except Exception as exc:
            raise MemoryError_(f"cannot open Milvus at {self.uri}: {str(exc).splitlines()[0]}") from None
        self.collection = f"memchat_vectors_{store_id}"
        self.state_collection = f"memchat_state_{store_id}"
        self.dim = None
        if self.client.has_collection(self.collection):
            self.dim = int(next(f["params"]["dim"] for f in self.client.describe_collection(self.collection)["fields"]
                                if f["name"] == "vector"))
        elif dim is not None:
            self._create(dim)
        if not self.client.has_collection(self.state_collection):
            self.client.create_collection(self.state_collection, dimension=2, metric_type="L2")

    def _create(self, dim: int) -> None:
        self.client.create_collection(self.collection, dimension=dim, metric_type="IP", auto_id=False,
                                      id_type="int", consistency_level="Strong")
        self.dim = dim

    def reset(self, dim: int | None) -> None:
        if self.client.has_collection(self.collection):
            self.client.drop_collection(self.collection)
        self.client.delete(self.state_collection, ids=[0])
        self.dim = None
        if dim:
            self._create(dim)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        if self.dim is None:
            self._create(vectors.shape[1])
        for chunk_ids, chunk in batches(ids, vectors, BATCH):
            # upsert: a process taking in another's writes may send a vector the store already has
            self.client.upsert(self.collection, [{"id": int(i), "vector": v} for i, v in zip(chunk_ids.tolist(), chunk)])

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self.dim is None or k <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        hits = self.client.search(self.collection, data=[np.asarray(query, dtype=np.float32).tolist()], limit=k,
                                  output_fields=[])[0]
        return (np.array([h["id"] for h in hits], dtype=np.int64),
                np.array([h["distance"] for h in hits], dtype=np.float32))

    def delete(self, ids: np.ndarray) -> None:
        if self.dim is not None and len(ids):
            self.client.delete(self.collection, ids=[int(i) for i in ids])

    def count(self) -> int:
        if self.dim is None:
            return 0
        return int(self.client.query(self.collection, filter="", output_fields=["count(*)"])[0]["count(*)"])

    def state(self) -> IndexState | None:
        rows = self.client.get(self.state_collection, ids=[0], output_fields=["generation", "max_id", "count"])
        if not rows:
            return None
        return IndexState(int(rows[0]["generation"]), int(rows[0]["max_id"]), int(rows[0]["count"]))

    def save(self, state: IndexState) -> None:
        self.client.upsert(self.state_collection, [{"id": 0, "vector": [0.0, 0.0], "generation": state.generation,
                                                   "max_id": state.max_id, "count": state.count}])
        if hasattr(self.client, "flush") and self.dim is not None:
            self.client.flush(self.collection)

    def disk_bytes(self) -> int:
        path = Path(self.uri)
        if not path.exists():
            return 0
        return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())

    def close(self) -> None:
        self.client.close()


def _locked(lock_file: Path) -> bool:
    """Whether Milvus Lite's advisory flock on its data folder is held (it allows one process)."""
    import fcntl
    import os

    try:
        fd = os.open(lock_file, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
