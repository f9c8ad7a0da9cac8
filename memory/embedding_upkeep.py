"""Keeping a memory's vectors in step with its embedding model: the check that they are the
configured model's, a re-embed after a change of provider or model, the catch-up of turns stored
while the provider could not be reached or embedded just after their commit (a chat reply), and
the watch on whether the provider can be reached.

Both go through the write path a new turn takes (`embed_chunks`, then the embedding-row insert in
memory/writing.py); neither keeps a second copy of split, encode or insert. Split from Memory
(memory/memory.py) for length: these are its methods, taking it as `memory` (not imported here, so
the arrows run one way), and they use its lock and index as it does.
"""
from __future__ import annotations

import time

from sqlalchemy import func, select

from memory import pending
from memory.errors import EmbeddingRefused, EmbeddingUnavailable, ModelMismatch, storage_failures_named
from memory.record import bump_generation, embeddings, get_meta, scrub, set_meta
from memory.runtime.heap import release_freed_memory
from memory.writing import commit_vectors, embed_chunks

REEMBED_BATCH = 256
CATCH_UP_BATCH = 64


class ProviderWatch:
    """Whether the embedding provider answers. Says it is down once per outage (a call that works
    ends one), and after a failure leaves it alone for `retry_s`: a provider that hangs rather than
    refuses would otherwise hold every message for its timeout. A local embedder never fails so."""

    def __init__(self, model_id: str, notice, retry_s: float = 30.0):
        self.model_id, self.notice, self.retry_s = model_id, notice, retry_s
        self.down = False
        self._retry_at = 0.0

    def may_try(self) -> bool:
        return time.monotonic() >= self._retry_at

    def answered(self, ok: bool) -> None:
        if not ok:
            self._retry_at = time.monotonic() + self.retry_s
            if not self.down:
                self.notice(f"the embedding provider ({self.model_id}) cannot be reached: turns are stored and "
                            "found by their words, and embedded when it is back")
        self.down = not ok

    def query_encoder(self, embedder):
        """encode_query that answers None while the provider is down (recall goes on with full text)."""
        def encode(query: str):
            if not self.may_try():
                return None
            try:
                vector = embedder.encode_query(query)
            except EmbeddingUnavailable:
                self.answered(False)
                return None
            self.answered(True)
            return vector
        return encode


def check_model(engine, model_id: str) -> None:
    """Refuse to open a memory embedded with another model than the configured one, saying how to fix it."""
    with engine.connect() as conn:
        stored = get_meta(conn, "embed_model")
        # The nearest other model name on either side, from the index on model: no scan of the vectors.
        below, above = conn.exec_driver_sql(
            "SELECT (SELECT max(model) FROM embeddings WHERE model < :m), "
            "(SELECT min(model) FROM embeddings WHERE model > :m)", {"m": model_id}).one()
        others = [] if below is None and above is None else conn.execute(
            select(embeddings.c.model, func.count()).where(embeddings.c.model != model_id)
            .group_by(embeddings.c.model)).all()
    if others or (stored and stored != model_id):
        found = ", ".join(f"{m} ({n} vectors)" for m, n in others) or stored
        raise ModelMismatch(
            f"this store's memories were embedded with {found}, but the configured model is {model_id}; run "
            f"`memchat memory reembed` to re-embed them with it, or set MEMCHAT_EMBED_MODEL={stored or others[0][0]}")


def reembed(memory, progress, batch: int = REEMBED_BATCH) -> int:
    """Re-embed every turn with the configured model. Resumable: turns already embedded with it
    are skipped, so an interrupted run picks up where it stopped. Other processes wait."""
    model = memory.embedder.model_id
    with memory._lock.exclusive("re-embedding"):
        with memory.engine.connect() as conn:
            todo = pending.count(conn, model)
        done = 0
        while rows := _waiting(memory, batch):
            chunks, vectors = embed_chunks(memory.embedder, [body for _, body in rows])
            commit_vectors(memory.engine, model, [turn_id for turn_id, _ in rows], chunks, vectors, replace=True)
            done += len(rows)
            progress("re-embedding", done, max(todo, done))
        with memory.engine.begin() as conn:
            set_meta(conn, "embed_model", model)
            set_meta(conn, "embed_dim", str(memory.embedder.dim))
            pending.clear(conn)
            bump_generation(conn)
        memory.store.reset(memory.embedder.dim)
        memory.index.sync(progress, force=True)
        scrub(memory.engine)  # the old vectors' bytes, under the lock others wait on with a message
    release_freed_memory()
    return done


def embed_pending(memory, progress, limit: int | None = None, batch: int = CATCH_UP_BATCH) -> int:
    """Embed up to `limit` turns stored while the provider was down; returns how many. Embedding
    happens before the lock is taken; if the provider is still down, they keep waiting."""
    embed_deferred(memory)
    model = memory.embedder.model_id
    with memory.engine.connect() as conn:
        if not pending.may_wait(conn):
            return 0
        todo = pending.count(conn, model)
    done = 0
    while limit is None or done < limit:
        rows = _waiting(memory, batch if limit is None else min(batch, limit - done))
        if not rows:
            with memory._lock.exclusive("storing turns"), memory.engine.begin() as conn:
                if not pending.oldest(conn, model, 1):  # none left, after any other process's writes
                    pending.clear(conn)
            break
        try:
            chunks, vectors = embed_chunks(memory.embedder, [body for _, body in rows])
        except EmbeddingUnavailable:
            memory.provider.answered(False)
            break
        except EmbeddingRefused as exc:  # never the write's own failure: it is stored; these wait
            memory.notices.append(f"turns waiting for their vectors were refused by the provider: {exc}")
            break
        with memory._lock.exclusive("storing turns"), storage_failures_named(memory.data_dir):
            _add_vectors(memory, model, rows, chunks, vectors)
        done += len(rows)
        progress("embedding", done, max(todo, done))
    return done


def embed_deferred(memory) -> int:
    """Embed the turns committed a moment before their vectors (a chat reply, after its turn
    returned; or what a crash left listed, or another process's just-committed reply, which it
    would embed itself a moment later: a turn is embedded once either way); returns how many. If
    the provider cannot be reached or refuses, they wait as turns stored during an outage do."""
    model = memory.embedder.model_id
    with memory.engine.connect() as conn:
        listed = pending.deferred(conn)
        rows = pending.lacking(conn, model, listed)  # forgotten or embedded since: nothing to do
    if not listed or (rows and not memory.provider.may_try()):  # moments after a failure: not again yet
        return 0
    try:
        chunks, vectors = embed_chunks(memory.embedder, [body for _, body in rows]) if rows else ([], None)
        if rows:
            memory.provider.answered(True)
    except (EmbeddingUnavailable, EmbeddingRefused) as exc:  # a refused key waits for the person to fix it
        if isinstance(exc, EmbeddingUnavailable):
            memory.provider.answered(False)
        chunks = None
    with memory._lock.exclusive("storing turns"), storage_failures_named(memory.data_dir):
        if chunks:
            _add_vectors(memory, model, rows, chunks, vectors)
        with memory.engine.begin() as conn:
            if chunks is None:
                pending.mark(conn)
            pending.settle(conn, listed)
    return len(rows) if chunks is not None else 0


def _add_vectors(memory, model: str, rows: list[tuple[int, str]], chunks, vectors) -> None:
    """The vectors of turns already stored, into SQLite and then the index (exclusive lock held)."""
    memory.index.refresh()
    ids, vectors = commit_vectors(memory.engine, model, [turn_id for turn_id, _ in rows], chunks, vectors,
                                  replace=False)
    if len(ids):
        memory.index.added(ids, vectors)


def _waiting(memory, n: int) -> list[tuple[int, str]]:
    with memory.engine.connect() as conn:
        return pending.oldest(conn, memory.embedder.model_id, n)
