"""Vector-store registry: adding a store is one module and one line in STORES."""
from __future__ import annotations

from pathlib import Path

from memory.errors import BadInput
from memory.stores.base import IndexState, VectorStore  # noqa: F401

STORES = ("faiss", "pgvector", "milvus")


def open_store(name: str, data_dir: Path, dim: int | None, store_id: str, **options) -> VectorStore:
    """Open store `name` for the SQLite store `store_id` (tables/collections are named after it)."""
    if name == "faiss":
        from memory.stores.faiss import FaissStore

        return FaissStore(Path(data_dir) / "index.faiss", dim, **options)
    if name == "pgvector":
        from memory.stores.pgvector import PgvectorStore

        return PgvectorStore(data_dir, dim, store_id, **options)
    if name == "milvus":
        from memory.stores.milvus import MilvusStore

        return MilvusStore(data_dir, dim, store_id, **options)
    raise BadInput(f"unknown vector store {name!r}; available: {', '.join(STORES)}")
