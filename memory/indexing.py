"""Keeping a vector index in line with SQLite, which always wins.

A store remembers the IndexState it reflects (deletion generation, highest embedding id, count).
On open, and after anything that replaces vectors, `sync` compares it with SQLite and does
nothing, catches up (embedding ids are never reused, so "id > max_id" is exactly what is new), or
rebuilds from the embedding rows.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from memory.record import embeddings, get_meta
from memory.stores import IndexState

Progress = Callable[[str, int, int], None]


def sql_state(conn: Connection) -> IndexState:
    """What an index must reflect to be current."""
    generation = int(get_meta(conn, "index_generation", "0"))
    # Two subqueries: alone, max(id) is one lookup and count(*) reads an index; together SQLite
    # reads every row (50 ms at a million memories).
    max_id, count = conn.exec_driver_sql("SELECT (SELECT coalesce(max(id), 0) FROM embeddings), "
                                         "(SELECT count(*) FROM embeddings)").one()
    return IndexState(generation, int(max_id), int(count))


def sync(engine: Engine, store, progress: Progress, force: bool = False,
         have: IndexState | None = None, save: bool = True) -> str:
    """Nothing, catch up, or rebuild `store` from SQLite; returns "current", "caught up" or "rebuilt".

    `have` is what the store holds when the caller knows better than its last saved stamp (a
    process's index with additions not saved yet); `save` stamps the result on the store.
    """
    with engine.connect() as conn:
        truth = sql_state(conn)
    have = have or store.state()
    if not force and have == truth and store.count() == truth.count:
        return "current"
    catch_up = (
        not force and have is not None and have.generation == truth.generation
        and have.max_id <= truth.max_id and store.count() == have.count
    )
    if not catch_up:
        with engine.connect() as conn:
            dim = get_meta(conn, "embed_dim")
        store.reset(int(dim) if dim else None)
    after = have.max_id if catch_up else 0
    _add_rows(engine, store, after, truth.count - (have.count if catch_up else 0), progress)
    if store.count() != truth.count:  # should not happen; SQL wins, so start over
        store.reset(store.dim)
        _add_rows(engine, store, 0, truth.count, progress)
    if save:
        store.save(truth)
    return "caught up" if catch_up else "rebuilt"


def changed_since(conn: Connection) -> tuple[int, int]:
    """(deletion generation, highest vector id): a cheap look at whether anyone changed the vectors.

    Embedding ids are never reused and every delete bumps the generation, so if neither moved,
    nothing did. Both are index lookups; the count in sql_state is a scan.
    """
    generation = int(get_meta(conn, "index_generation", "0"))
    max_id = conn.exec_driver_sql("SELECT coalesce(max(id), 0) FROM embeddings").scalar_one()
    return generation, int(max_id)


def _add_rows(engine: Engine, store, after_id: int, total: int, progress: Progress, batch: int = 10_000) -> None:
    """Add every embedding row with an id above `after_id` to the store, in batches."""
    done = 0
    with engine.connect() as conn:
        while True:
            rows = conn.execute(
                select(embeddings.c.id, embeddings.c.vector).where(embeddings.c.id > after_id)
                .order_by(embeddings.c.id).limit(batch)
            ).all()
            if not rows:
                break
            ids = np.array([r[0] for r in rows], dtype=np.int64)
            vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)
            store.add(ids, vectors)
            after_id = int(ids[-1])
            done += len(rows)
            progress("indexing", done, max(total, done))
