"""Pinecone store through the official `pinecone` SDK (not the deprecated `pinecone-client`).

PINECONE_API_KEY, and MEMCHAT_PINECONE_INDEX (default "memchat"): created serverless with the
embedder's dimension and cosine metric on the first vector if it does not exist
(MEMCHAT_PINECONE_CLOUD / MEMCHAT_PINECONE_REGION, default aws / us-east-1). MEMCHAT_PINECONE_HOST
names an index host directly (Pinecone Local, a proxy) and skips the control plane.

Each memchat store is one namespace, `memchat-<store id>`, written by that data dir alone; the
IndexState the namespace reflects is kept beside SQLite in `<data dir>/pinecone-state.json` (no key
in it), because Pinecone's reads, fetch included, may not see the newest write yet. Within the service's documented
limits: ≤ 1,000 vectors and ≤ 2 MB per upsert, ≤ 1,000 ids per delete, top_k ≤ 10,000, string ids.

Pinecone is eventually consistent: a vector acknowledged by an upsert is durable but may not be
searchable for a few seconds, and `describe_index_stats` lags too. So the store (1) merges the
vectors it wrote in the last SETTLE_S seconds into every search by exact inner product (they are
SQLite's own vectors, handed to `add`) and hides the ids it deleted as long, and (2) counts what
the service acknowledged rather than the lagging statistics.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from memory.errors import MemoryError_
from memory.runtime.private_files import make_private
from memory.stores import remote
from memory.stores.base import IndexState, VectorStore, batches

MAX_UPSERT_VECTORS = 1_000
MAX_UPSERT_BYTES = 2_000_000
MAX_DELETE_IDS = 1_000
MAX_TOP_K = 10_000
SETTLE_S = 60.0  # how long a write may take to become searchable; the service takes seconds
TIMEOUT_S = 10.0
STATE_FILE = "pinecone-state.json"


class PineconeStore(VectorStore):
    name = "pinecone"
    index_kind = "serverless"
    remote = True  # failures fall back to exact search over SQLite (memory/store_guard.py)
    # The vectors are shared, but the acknowledged count and the not-yet-visible writes are this
    # process's: so other processes' writes are taken in like a private index's
    # (VectorIndex.refresh), re-upserting them, which Pinecone makes idempotent.
    shared = False

    def __init__(self, data_dir: Path, dim: int | None, store_id: str, api_key: str | None = None,
                 index: str | None = None, host: str | None = None, cloud: str | None = None,
                 region: str | None = None, control_url: str | None = None):
        try:
            import pinecone
        except ImportError:
            raise MemoryError_("the pinecone store needs the pinecone SDK: pip install pinecone") from None
        if not api_key:
            raise MemoryError_("the pinecone store needs PINECONE_API_KEY")
        self._api_key = api_key
        self._sdk = pinecone
        self.index_name = index or "memchat"
        self._deployment = {"deployment_type": "managed", "cloud": cloud or "aws", "region": region or "us-east-1"}
        self._control = pinecone.Pinecone(api_key=api_key, host=control_url or None, timeout=TIMEOUT_S)
        self.namespace = f"memchat-{store_id}"
        self.state_path = Path(data_dir) / STATE_FILE
        self.recent = remote.RecentWrites(SETTLE_S)
        self._recent_loaded = False
        self.index = None
        self.dim = None
        if host:
            self._connect(host)
        else:
            described = self._call("open", self._describe)
            if described is not None:
                self._connect(described.host)
        if self.index is not None:
            stats = self._call("open", lambda: self.index.describe_index_stats())
            self.dim = int(stats.dimension) if stats.dimension else None
        if self.dim is None and dim is not None:
            self._create(dim)
        saved = self.state()
        self._count = saved.count if saved else self._visible_count()
        self.location = self.index.host if self.index is not None else f"index {self.index_name} (not created yet)"

    # -- plumbing --------------------------------------------------------------------------------
    def _call(self, what: str, fn):
        # The SDK retries 408/429/5xx itself (jittered backoff, 3 retries): one attempt here.
        return remote.call(fn, store="pinecone", what=what, status_of=_status, secrets=(self._api_key,),
                           key_var="PINECONE_API_KEY", attempts=1)

    def _describe(self):
        try:
            return self._control.indexes.describe(self.index_name)
        except self._sdk.errors.exceptions.NotFoundError:
            return None

    def _connect(self, host: str) -> None:
        self.index = self._sdk.Index(host=host, api_key=self._api_key, timeout=TIMEOUT_S)

    def _create(self, dim: int) -> None:
        if self.index is None:
            model = self._call("create index", lambda: self._control.indexes.create(
                name=self.index_name, dimension=dim, metric="cosine", deployment=self._deployment))
            self._connect(model.host)
        self.dim = dim

    def _visible_count(self) -> int:
        if self.index is None:
            return 0
        stats = self._call("count", lambda: self.index.describe_index_stats())
        summary = (stats.namespaces or {}).get(self.namespace)
        return int(summary.vector_count) if summary else 0

    # -- the protocol ------------------------------------------------------------------------------
    def reset(self, dim: int | None) -> None:
        if self.index is not None:
            self._call("reset", lambda: self._delete_namespace(self.namespace))
        self.state_path.unlink(missing_ok=True)
        self.recent.clear()
        self._count = 0
        if dim:
            self._create(dim)

    def _delete_namespace(self, namespace: str) -> None:
        try:
            self.index.delete(delete_all=True, namespace=namespace)
        except self._sdk.errors.exceptions.NotFoundError:
            pass  # never written: nothing to delete

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        if self.dim is None:
            self._create(vectors.shape[1])
        # A float32 written as JSON takes up to ~24 bytes ("-0.012345678901234567,"): stay under both limits.
        size = max(1, min(MAX_UPSERT_VECTORS, MAX_UPSERT_BYTES // (vectors.shape[1] * 24 + 64)))
        for chunk_ids, chunk in batches(ids, vectors, size):
            records = [(str(i), v.tolist()) for i, v in zip(chunk_ids.tolist(), chunk)]
            self._call("add", lambda: self.index.upsert(vectors=records, namespace=self.namespace))
            self.recent.added(chunk_ids, chunk)
            self._count += len(records)

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self.index is None or self.dim is None or k <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        query = np.asarray(query, dtype=np.float32)
        top_k = min(k, MAX_TOP_K)
        asked = min(k + self.recent.hidden(), MAX_TOP_K)
        result = self._call("search", lambda: self.index.query(vector=query.tolist(), top_k=asked,
                                                               namespace=self.namespace))
        ids = np.array([int(m.id) for m in result.matches], dtype=np.int64)
        scores = np.array([m.score for m in result.matches], dtype=np.float32)
        return self.recent.merge(ids, scores, query, top_k)

    def delete(self, ids: np.ndarray) -> None:
        if self.index is None or not len(ids):
            return
        for start in range(0, len(ids), MAX_DELETE_IDS):
            chunk = [str(int(i)) for i in ids[start:start + MAX_DELETE_IDS]]
            self._call("delete", lambda: self.index.delete(ids=chunk, namespace=self.namespace))
            self.recent.deleted(ids[start:start + MAX_DELETE_IDS])
            self._count -= len(chunk)

    def count(self) -> int:
        """Vectors the service acknowledged (its own statistics lag writes by seconds)."""
        return self._count

    def state(self) -> IndexState | None:
        """The state last saved for this index and namespace; None when there is none, or when the
        namespace has been empty for longer than writes take to show (deleted outside memchat)."""
        try:
            saved = json.loads(self.state_path.read_text())
            state = IndexState(int(saved["generation"]), int(saved["max_id"]), int(saved["count"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if self.index is None or saved.get("index") != self.index_name or saved.get("namespace") != self.namespace:
            return None
        if state.count and time.time() - float(saved.get("saved_at", 0)) > SETTLE_S and not self._visible_count():
            return None
        if not self._recent_loaded:  # once, at open: later this process's own record is the newer
            self._recent_loaded = True
            self.recent.from_json(saved.get("recent") or {})
        return state

    def reload(self) -> IndexState | None:
        """What another process saved after a forget: its count and its recent writes."""
        self._recent_loaded = False
        saved = self.state()
        if saved is not None:
            self._count = saved.count
        return saved

    def save(self, state: IndexState) -> None:
        if self.index is None:
            return  # nothing written yet: the next open rebuilds nothing
        record = {"index": self.index_name, "namespace": self.namespace, "generation": state.generation,
                  "max_id": state.max_id, "count": state.count, "saved_at": time.time(),
                  "recent": self.recent.to_json()}  # ids and times only: SQLite has the vectors
        tmp = self.state_path.with_name(STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(record))
        make_private(tmp)
        os.replace(tmp, self.state_path)

    def close(self) -> None:
        if self.index is not None:
            self.index.close()
        self._control.close()


def _status(exc: Exception) -> int | None:
    status = getattr(exc, "status_code", None)
    return int(status) if isinstance(status, int) else None
