"""Vector-store registry: adding a store is one module and one line here."""
from __future__ import annotations

from pathlib import Path

from memory.stores.base import IndexState, VectorStore  # noqa: F401


def open_store(name: str, data_dir: Path, dim: int | None, **options) -> VectorStore:
    if name == "faiss":
        from memory.stores.faiss import FaissStore

        return FaissStore(Path(data_dir) / "index.faiss", dim, **options)
    from memory.errors import BadInput

    raise BadInput(f"unknown vector store {name!r}; available: faiss")


STORES = ("faiss",)
