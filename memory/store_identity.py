"""Whose store id this is: a copied data dir must not share server storage with its original.

`meta.store_id` (issued by Memory._open) names this memory's tables, collections and namespaces
outside the data dir: pgvector at a URL, Pinecone, Weaviate, a Qdrant or Milvus server. A copy of
the data dir carries the same id, so both copies would write the same server storage, their
embedding ids would collide and dense hits would map to unrelated turns. So meta also records
where the id lives: the host, the data dir's absolute path, and the device and inode of its
SQLite file. Before a store opens:

- the same file (moved or renamed; also a volume mounted into a new container, whose host name is
  new every run), or the same path on the same host (restored in place): the same memory, and the
  record follows it;
- otherwise a copy, on this machine or another. Before a store outside the data dir opens, the
  copy gets an id of its own: the store finds nothing under it, indexing.sync rebuilds it from
  SQLite, and the person is told once. The original's server data is untouched.

A store inside the data dir (FAISS, embedded pgvector, Milvus Lite, Qdrant's local mode) was copied
along with it, so there a copy keeps its id and nothing is rebuilt; the record goes on saying
"copy" until the copy first opens a store outside (`memchat memory migrate --to pinecone`, say).
"""
from __future__ import annotations

import json
import socket
import uuid
from pathlib import Path
from typing import Callable

from sqlalchemy.engine import Connection

from memory.profiles import DB_NAME
from memory.record import get_meta, set_meta

HOME = "store_home"  # meta key: where the store id was issued or last confirmed


def store_id(conn: Connection, data_dir: Path, store: str, outside: bool, notice: Callable[[str], None]) -> str:
    """The id to open `store` under; a new one for a copy when the store is `outside` the data dir."""
    current = get_meta(conn, "store_id")
    here = _here(data_dir)
    try:
        home = json.loads(get_meta(conn, HOME) or "null")
    except ValueError:  # unreadable: start the record again
        home = None
    if home is None or _same_memory(home, here):
        if home != here:
            set_meta(conn, HOME, json.dumps(here))
        return current
    if not outside:
        return current  # its stores here were copied with it
    fresh = uuid.uuid4().hex[:12]
    set_meta(conn, "store_id", fresh)
    set_meta(conn, HOME, json.dumps(here))
    origin = home.get("path", "another data dir") + ("" if home.get("host") == here["host"] else f" on {home.get('host')}")
    notice(f"this memory is a copy of {origin}, so it now keeps its vectors on {store} under an id of its own, "
           f"rebuilt from SQLite; the original's vectors there are untouched")
    return fresh


def _here(data_dir: Path) -> dict:
    db = (Path(data_dir) / DB_NAME).stat()
    return {"host": socket.gethostname(), "path": str(Path(data_dir).resolve()), "file": f"{db.st_dev}:{db.st_ino}"}


def _same_memory(home: dict, here: dict) -> bool:
    return home.get("file") == here["file"] or (home.get("path") == here["path"] and home.get("host") == here["host"])
