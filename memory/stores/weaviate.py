"""Weaviate store through the official `weaviate-client` v4: Weaviate Cloud or a self-hosted server
at MEMCHAT_WEAVIATE_URL (+ WEAVIATE_API_KEY). The client speaks REST for the schema and gRPC for
data: gRPC at MEMCHAT_WEAVIATE_GRPC_URL, else `grpc-<host>:443` for Weaviate Cloud and
`<host>:50051` for a self-hosted server.

One collection per memchat store, `Memchat_<store id>`, with vectors supplied by memchat (no
vectorizer module) in an HNSW index with cosine distance. An object's UUID is its embedding id
(UUID(int=id)), so objects carry no properties. The IndexState is one object in
`MemchatState_<store id>`. Weaviate is consistent after a write on a single node, so unlike
Pinecone nothing is merged in.

The client's start-up checks are skipped on purpose: one of them asks pypi.org for the client's
latest version on every connect, a request memchat does not make from a person's machine.
"""
from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from memory.errors import MemoryError_
from memory.stores import remote
from memory.stores.base import IndexState, VectorStore, batches

BATCH = 1_000  # objects per gRPC batch: ~1.6 MB at 384 dims, under the server's 10 MB message limit
MAX_DELETE = 10_000  # objects one delete_many may match (the server's QUERY_MAXIMUM_RESULTS default)
TIMEOUT_S = 10
STATE_UUID = uuid.UUID(int=0)
CLOUD_DOMAINS = (".weaviate.cloud", ".weaviate.network", ".semi.technology")


class WeaviateStore(VectorStore):
    name = "weaviate"
    index_kind = "hnsw"
    remote = True  # failures fall back to exact search over SQLite (memory/store_guard.py)
    shared = True

    def __init__(self, data_dir: Path, dim: int | None, store_id: str, url: str | None = None,
                 api_key: str | None = None, grpc_url: str | None = None):
        if not url:
            raise MemoryError_("the weaviate store needs MEMCHAT_WEAVIATE_URL (Weaviate Cloud or your server)")
        try:
            import weaviate
            from weaviate.classes.init import AdditionalConfig, Auth, Timeout
        except ImportError:
            raise MemoryError_("the weaviate store needs weaviate-client: pip install weaviate-client") from None
        self._secrets = (api_key or "",)
        http, grpc = _endpoints(url, grpc_url)
        self.location = url
        try:
            self.client = weaviate.connect_to_custom(
                http_host=http.hostname, http_port=http.port or (443 if http.scheme == "https" else 80),
                http_secure=http.scheme == "https", grpc_host=grpc.hostname, grpc_port=grpc.port,
                grpc_secure=grpc.scheme == "https",
                auth_credentials=Auth.api_key(api_key) if api_key else None,
                additional_config=AdditionalConfig(timeout=Timeout(init=TIMEOUT_S, query=TIMEOUT_S, insert=60)),
                skip_init_checks=True)
        except Exception as exc:  # the client's start-up errors have no common base but Exception
            status = _status(exc)
            kind = remote.StoreRefused if status in (401, 403) else remote.StoreUnavailable
            raise kind(remote.describe_failure("weaviate", "connect", exc, status, self._secrets,
                                               "WEAVIATE_API_KEY")) from None
        self.collection_name = f"Memchat_{store_id}"
        self.state_name = f"MemchatState_{store_id}"
        self.dim = None
        if self._call("open", lambda: self.client.collections.exists(self.collection_name)):
            self.dim = dim  # Weaviate does not record a self-provided vector's width; SQLite does
        elif dim is not None:
            self._create(dim)
        self._call("open", self._ensure_state_collection)

    def _call(self, what: str, fn):
        return remote.call(fn, store="weaviate", what=what, status_of=_status, secrets=self._secrets,
                           key_var="WEAVIATE_API_KEY")

    def _ensure_state_collection(self) -> None:
        from weaviate.classes.config import Configure, DataType, Property

        if not self.client.collections.exists(self.state_name):
            self.client.collections.create(
                self.state_name, vector_config=Configure.Vectors.self_provided(),
                properties=[Property(name=n, data_type=DataType.INT) for n in ("generation", "max_id", "count")])

    def _create(self, dim: int) -> None:
        from weaviate.classes.config import Configure, VectorDistances

        self._call("create", lambda: self.client.collections.create(
            self.collection_name, vector_config=Configure.Vectors.self_provided(
                vector_index_config=Configure.VectorIndex.hnsw(distance_metric=VectorDistances.COSINE))))
        self.dim = dim

    @property
    def _vectors(self):
        return self.client.collections.use(self.collection_name)

    def reset(self, dim: int | None) -> None:
        def drop():
            for name in (self.collection_name, self.state_name):
                if self.client.collections.exists(name):
                    self.client.collections.delete(name)
            self._ensure_state_collection()

        self._call("reset", drop)
        self.dim = None
        if dim:
            self._create(dim)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        from weaviate.classes.data import DataObject

        if len(ids) == 0:
            return
        if self.dim is None:
            self._create(vectors.shape[1])
        for chunk_ids, chunk in batches(ids, vectors, BATCH):
            objects = [DataObject(uuid=uuid.UUID(int=i), vector=v.tolist(), properties={})
                       for i, v in zip(chunk_ids.tolist(), chunk)]
            result = self._call("add", lambda: self._vectors.data.insert_many(objects))
            if result.has_errors:
                first = next(iter(result.errors.values()))
                raise remote.StoreUnavailable(f"weaviate refused {len(result.errors)} of {len(objects)} vectors: "
                                              f"{first.message}")

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        from weaviate.classes.query import MetadataQuery

        if self.dim is None or k <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        query = np.asarray(query, dtype=np.float32).tolist()
        found = self._call("search", lambda: self._vectors.query.near_vector(
            query, limit=k, return_metadata=MetadataQuery(distance=True), return_properties=[]).objects)
        return (np.array([o.uuid.int for o in found], dtype=np.int64),
                np.array([1.0 - o.metadata.distance for o in found], dtype=np.float32))  # cosine distance -> cosine

    def delete(self, ids: np.ndarray) -> None:
        from weaviate.classes.query import Filter

        if self.dim is None or not len(ids):
            return
        for start in range(0, len(ids), MAX_DELETE):
            uuids = [uuid.UUID(int=int(i)) for i in ids[start:start + MAX_DELETE]]
            self._call("delete", lambda: self._vectors.data.delete_many(where=Filter.by_id().contains_any(uuids)))

    def count(self) -> int:
        if self.dim is None:
            return 0
        return int(self._call("count", lambda: self._vectors.aggregate.over_all(total_count=True).total_count))

    def state(self) -> IndexState | None:
        found = self._call("open", lambda: self.client.collections.use(self.state_name).query.fetch_object_by_id(
            STATE_UUID))
        if found is None:
            return None
        p = found.properties
        return IndexState(int(p["generation"]), int(p["max_id"]), int(p["count"]))

    def save(self, state: IndexState) -> None:
        from weaviate.classes.data import DataObject

        record = DataObject(uuid=STATE_UUID, vector=[1.0], properties={
            "generation": state.generation, "max_id": state.max_id, "count": state.count})
        result = self._call("save", lambda: self.client.collections.use(self.state_name).data.insert_many([record]))
        if result.has_errors:
            raise remote.StoreUnavailable(f"weaviate did not save the index state: "
                                          f"{next(iter(result.errors.values())).message}")

    def close(self) -> None:
        self.client.close()


def _endpoints(url: str, grpc_url: str | None):
    http = urlsplit(url if "://" in url else f"https://{url}")
    if grpc_url:
        return http, urlsplit(grpc_url if "://" in grpc_url else f"http://{grpc_url}")
    if http.scheme == "https" and (http.hostname or "").endswith(CLOUD_DOMAINS):
        return http, urlsplit(f"https://grpc-{http.hostname}:443")
    return http, urlsplit(f"{http.scheme}://{http.hostname}:50051")


def _status(exc: Exception) -> int | None:
    """An HTTP status for the REST side's errors; the gRPC side's codes mapped to their HTTP kin."""
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status
    grpc_codes = {"UNAVAILABLE": 503, "RESOURCE_EXHAUSTED": 429, "UNAUTHENTICATED": 401,
                  "PERMISSION_DENIED": 403, "DEADLINE_EXCEEDED": 504, "NOT_FOUND": 404}
    seen = exc
    while seen is not None:
        code = getattr(seen, "code", None)
        if callable(code):
            try:
                return grpc_codes.get(code().name)
            except Exception:  # not a grpc.Call after all
                pass
        seen = seen.__cause__ or seen.__context__
    return None
