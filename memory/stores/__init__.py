"""Vector-store registry: adding a store is one module and one entry in STORES.

Everything that offers a choice of store (the CLI's --store/--to/--stores, `memchat doctor`, the
TUI's settings, `memchat bench`, the conformance tests) reads this table; no other list of store
names exists. Each store module is imported only when the store is opened, so reading the table
is free.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path

from memory.errors import BadInput
from memory.stores.base import IndexState, StoreBusy, StoreRefused, StoreUnavailable, VectorStore  # noqa: F401


@dataclass(frozen=True)
class StoreSpec:
    name: str
    module: str  # opened as module.cls(data_dir, dim, store_id, **options)
    cls: str
    about: str  # one line: what it is and where its data lives
    settings: dict[str, str] = field(default_factory=dict)  # constructor option -> environment variable
    secrets: tuple[str, ...] = ()  # options that are keys or tokens: never printed, never written
    # An option that must be set before the store can exist at all (a hosted service without a local
    # mode); None: the store works with no settings (a local file or a server memchat starts).
    requires: str | None = None
    # The option that, once set, puts the vectors outside the data dir (a server, or a Milvus Lite
    # file elsewhere) under names made from the store id, which a copy of the data dir would then
    # share: memory/store_identity.py gives a copy an id of its own before such a store opens.
    outside_when: str | None = None

    def configured(self, options: dict) -> bool:
        return self.requires is None or bool(options.get(self.requires))

    def outside(self, options: dict) -> bool:
        return self.outside_when is not None and bool(options.get(self.outside_when))


STORES: dict[str, StoreSpec] = {spec.name: spec for spec in (
    StoreSpec("faiss", "memory.stores.faiss", "FaissStore",
              "FAISS index file in the data dir (exact search, IVF past 20k vectors)"),
    StoreSpec("pgvector", "memory.stores.pgvector", "PgvectorStore",
              "PostgreSQL + pgvector: an embedded server in the data dir, or MEMCHAT_PG_URL",
              {"url": "MEMCHAT_PG_URL", "ef_search": "MEMCHAT_PG_EF_SEARCH"}, outside_when="url"),
    StoreSpec("milvus", "memory.stores.milvus", "MilvusStore",
              "Milvus Lite in the data dir, or a Milvus server / Zilliz Cloud at MEMCHAT_MILVUS_URI",
              {"uri": "MEMCHAT_MILVUS_URI", "token": "MEMCHAT_MILVUS_TOKEN"}, secrets=("token",), outside_when="uri"),
    StoreSpec("qdrant", "memory.stores.qdrant", "QdrantStore",
              "Qdrant's local mode in the data dir, or a Qdrant server / Qdrant Cloud at MEMCHAT_QDRANT_URL",
              {"url": "MEMCHAT_QDRANT_URL", "api_key": "QDRANT_API_KEY"}, secrets=("api_key",), outside_when="url"),
    StoreSpec("pinecone", "memory.stores.pinecone", "PineconeStore",
              "Pinecone serverless (hosted): PINECONE_API_KEY, index MEMCHAT_PINECONE_INDEX",
              {"api_key": "PINECONE_API_KEY", "index": "MEMCHAT_PINECONE_INDEX", "host": "MEMCHAT_PINECONE_HOST",
               "cloud": "MEMCHAT_PINECONE_CLOUD", "region": "MEMCHAT_PINECONE_REGION",
               "control_url": "MEMCHAT_PINECONE_CONTROL_URL"},
              secrets=("api_key",), requires="api_key", outside_when="api_key"),
    StoreSpec("weaviate", "memory.stores.weaviate", "WeaviateStore",
              "Weaviate (Weaviate Cloud or self-hosted) at MEMCHAT_WEAVIATE_URL",
              {"url": "MEMCHAT_WEAVIATE_URL", "api_key": "WEAVIATE_API_KEY", "grpc_url": "MEMCHAT_WEAVIATE_GRPC_URL"},
              secrets=("api_key",), requires="url", outside_when="url"),
)}


def open_store(name: str, data_dir: Path, dim: int | None, store_id: str, **options) -> VectorStore:
    """Open store `name` for the SQLite store `store_id` (tables, collections, namespaces are named after it)."""
    spec = STORES.get(name)
    if spec is None:
        raise BadInput(f"unknown vector store {name!r}; available: {', '.join(STORES)}")
    cls = getattr(importlib.import_module(spec.module), spec.cls)
    return cls(Path(data_dir), dim, store_id, **{k: v for k, v in options.items() if v is not None})
