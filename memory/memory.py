"""The facade the assistant uses: remember(), recall(), forget(), and the store's upkeep.

Order of every write: one SQL transaction (turn row, full-text rows, embedding blobs), commit,
then the vector index. If the process dies between the two, the next open catches the index up
from SQL, which always wins.

Several processes may open one data dir at once: memory/datadir.py locks each operation, not the
process (shared to search, exclusive to change the index or to re-embed), and before the index is
searched or changed it takes in what the others wrote or forgot (memory/vector_index.py).
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
from sqlalchemy import func, select, update

from memory import embedding_upkeep, pending
from memory import pins as pinning
from memory import recall as R
from memory.datadir import DataDirLock
from memory.dense_scores import window_vectors
from memory.embedding import Embedder
from memory.embedding_upkeep import ProviderWatch
from memory.errors import NotFound, storage_failures_named
from memory.forgetting import delete_turns
from memory.profiles import DB_NAME
from memory.record import conversations, embeddings, get_meta, in_list, open_record, scrub, set_meta, turns
from memory.runtime.heap import release_freed_memory
from memory.runtime.private_files import ensure_private_dir
from memory.stores import StoreUnavailable
from memory.timewindow import TimeWindow
from memory.turn import Hit, NewTurn, Turn
from memory.vector_index import VectorIndex
from memory.writing import commit_batch, embed_batch

PENDING_PER_WRITE = 256  # turns stored while the provider was down, embedded after each new write
IMPORT_BATCH = 1024  # turns an import embeds and commits at once: the embedder pads less (docs/benchmarks.md)
# progress(phase, done, total): the CLI draws a bar from it; memory/ draws nothing itself.
Progress = Callable[[str, int, int], None]


def _no_progress(phase: str, done: int, total: int) -> None:
    pass


@dataclass
class ImportResult:
    added: int
    skipped: int


class Memory:
    def __init__(
        self,
        data_dir: Path,
        embedder: Embedder | None = None,
        *,
        store: str | None = None,
        store_options: dict | None = None,
        progress: Progress | None = None,
        check_model: bool = True,
        on_wait: Callable[[str], None] | None = None,
    ):
        """`on_wait(message)`: said once when an operation waits over a second for another process's."""
        self.embedder = embedder or Embedder()
        with storage_failures_named(data_dir):
            self.data_dir = ensure_private_dir(Path(data_dir))
            self._lock = DataDirLock(self.data_dir, on_wait)
            try:
                with self._lock.exclusive("opening the memory"):
                    self._open(store, store_options, progress, check_model)
            except BaseException:
                self._lock.close()
                raise
        self._upkeep = check_model  # not during a re-embed: its vectors are another model's until it ends
        self.settle_deferred()  # what a crash left committed but not embedded

    def _open(self, store, store_options, progress, check_model) -> None:
        self.engine = open_record(self.data_dir / DB_NAME)
        if check_model:
            embedding_upkeep.check_model(self.engine, self.embedder.model_id)
        with self.engine.begin() as conn:
            if get_meta(conn, "store_id") is None:  # names this store's tables in shared servers
                set_meta(conn, "store_id", uuid.uuid4().hex[:12])
            dim = get_meta(conn, "embed_dim")
            if dim and get_meta(conn, "embed_model") == self.embedder.model_id and hasattr(self.embedder, "known_dim"):
                self.embedder.known_dim(int(dim))  # a provider's model opens offline, without a probe
            # The store the data dir last used, unless the caller names one.
            name = store or get_meta(conn, "vector_store", "faiss")
        self.notices: list[str] = []  # said once to the person: a remote store that failed, ...
        self.provider = ProviderWatch(self.embedder.model_id, self.notices.append)  # is the embedder answering?
        # per store name: {"faiss": {"kind": "ivf"}, ...}
        self.index = VectorIndex(self.engine, self.data_dir, name, store_options or {}, self.embedder.model_id,
                                 self.notices.append, progress or _no_progress, sync_now=check_model)

    @property
    def store(self):
        return self.index.store

    @property
    def store_name(self) -> str:
        return self.index.name

    # -- index upkeep --------------------------------------------------------------------------
    def sync_index(self, progress: Progress = _no_progress, force: bool = False) -> str:
        """Bring the vector index in line with SQL: nothing, catch up, or rebuild. Returns which."""
        with self._lock.exclusive("rebuilding the vector index"):
            return self.index.sync(progress, force)

    def migrate_store(self, target: str, progress: Progress = _no_progress, options: dict | None = None) -> int:
        """Make `target` this data dir's vector store: copy the vectors from SQLite (no re-embedding).
        `options`: the stores' settings, when they changed since the memory was opened."""
        if options is not None:
            self.index.options = options
        with self._lock.exclusive(f"moving the memory to {target}"):
            return self.index.move_to(target, progress)

    @property
    def deletes_deferred(self) -> bool:
        """A forget could not reach the hosted store yet (it was down); `retry_deferred` sends it."""
        return self.index is not None and self.index.guard.deferred

    def retry_deferred(self) -> bool:
        """Send the deletes a hosted store's outage held back; True when none waits any more."""
        if not self.deletes_deferred:
            return True
        with self._lock.exclusive("sending a forget to the vector store"):
            return self.index.guard.retry_deferred()

    def take_notices(self) -> list[str]:
        """What the person should be told once (a store that failed), cleared as it is taken."""
        taken, self.notices[:] = list(self.notices), []
        return taken

    # -- writing -------------------------------------------------------------------------------
    def remember(self, text_: str, role: str = "user", conversation_id: str | None = None,
                 embed_later: bool = False, **fields) -> Turn:
        """Store one turn durably (SQL commit, then the index) and return it. `embed_later`: commit it
        now, embed it when the caller calls embed_deferred (a chat reply, after its turn returned)."""
        turn = NewTurn(text=text_, role=role, conversation_id=conversation_id, **fields)
        return self._store_batch([turn], skip_existing=False, later=embed_later)[0]

    def remember_many(self, records: Iterable[NewTurn], total: int | None = None,
                      progress: Progress = _no_progress, batch_size: int = IMPORT_BATCH,
                      vectors: np.ndarray | None = None) -> ImportResult:
        """Import: embed and commit in batches; records already stored (same content key) are skipped.

        `vectors` (one unit vector per record, from the configured model) skips embedding: used to
        copy memories between stores and by the bench to fill a store with cached embeddings.
        """
        added = skipped = done = 0
        batch: list[NewTurn] = []

        def flush() -> None:
            nonlocal added, skipped, done
            given = None if vectors is None else vectors[done : done + len(batch)]
            stored = self._store_batch(batch, skip_existing=True, vectors=given)
            added += len(stored)
            skipped += len(batch) - len(stored)
            done += len(batch)
            batch.clear()
            progress("importing", done, total or done)

        for record in records:
            batch.append(record)
            if len(batch) >= batch_size:
                flush()
        if batch:
            flush()
        with self._lock.exclusive("saving the vector index"):
            self.index.settle()  # not a rewrite of a large FAISS file for a small import
        release_freed_memory()  # the import's embedding buffers, freed but still held by malloc
        return ImportResult(added, skipped)

    def _store_batch(self, batch: list[NewTurn], skip_existing: bool, vectors: np.ndarray | None = None,
                     later: bool = False) -> list[Turn]:
        attempt = self.provider.may_try()  # not within moments of a provider failure
        embedded = embed_batch(self.engine, self.embedder, batch, skip_existing, vectors, attempt, later)  # no lock
        if embedded is None:
            return []
        if attempt and not embedded.later:
            self.provider.answered(bool(embedded.chunks))
        with self._lock.exclusive("storing turns"), storage_failures_named(self.data_dir):
            self.index.refresh()  # new ids must extend what the index holds
            stored, vector_ids, new_vectors = commit_batch(self.engine, self.embedder.model_id, embedded, skip_existing)
            if len(vector_ids):
                self.index.added(vector_ids, new_vectors)
        if embedded.chunks and vectors is None:  # the provider answered: embed turns stored while it was down
            self.embed_pending(limit=PENDING_PER_WRITE)
        return stored

    def embed_pending(self, progress: Progress = _no_progress, limit: int | None = None) -> int:
        """Embed up to `limit` turns stored while the provider was down; returns how many."""
        return embedding_upkeep.embed_pending(self, progress, limit)

    def embed_deferred(self) -> int:
        """Embed the turns stored with embed_later (and any a crash left so); returns how many."""
        return embedding_upkeep.embed_deferred(self) if self.index is not None else 0

    def settle_deferred(self) -> None:
        """embed_deferred that never raises (at open, at close, after a reply is shown): what cannot
        be embedded now stays listed, with a notice (a full disk, a bug)."""
        if self._upkeep:
            try:
                self.embed_deferred()
            except Exception as exc:
                self.notices.append(f"a stored reply is not embedded yet ({type(exc).__name__}); it is found "
                                    "by its words until a later open embeds it")

    def rename_conversation(self, conversation_id: str, title: str) -> None:
        # Under the lock, like every write: a long forget elsewhere makes it wait with a message,
        # not run into SQLite's busy timeout.
        with self._lock.exclusive("renaming a conversation"), storage_failures_named(self.data_dir), \
                self.engine.begin() as conn:
            result = conn.execute(update(conversations).where(conversations.c.id == conversation_id).values(title=title))
        if result.rowcount == 0:
            raise NotFound(f"no conversation {conversation_id!r}")

    # -- reading -------------------------------------------------------------------------------
    def recall(self, query: str, k: int = 10, flt: R.RecallFilter | None = None,
               weights: R.RecallWeights | None = None, window: TimeWindow | None = None) -> list[Hit]:
        """The k best turns for `query`; with `window` (the time it names), the relevant ones inside first."""
        R.check_k(k)
        with self._lock.shared(), self.engine.connect() as conn:
            self.index.refresh()
            ranked = R.hybrid_recall(conn, self.index.guard, self.provider.query_encoder(self.embedder), query, k,
                                     flt or R.RecallFilter(), weights or R.RecallWeights(), window)
            by_id = {t.id: t for t in self._fetch(conn, [r.turn_id for r in ranked])}
        return [Hit(by_id[r.turn_id], r.score, r.signals, r.similarity) for r in ranked if r.turn_id in by_id]

    @staticmethod
    def _fetch(conn, ids: list[int]) -> list[Turn]:
        if not ids:
            return []
        return [_turn(r) for r in conn.exec_driver_sql(f"{pinning.WITH_PINS} WHERE turns.id IN {in_list(ids)}")]

    def vectors(self, turn_ids: Iterable[int]) -> dict[int, np.ndarray]:
        """Each turn's unit vector (the mean of its windows' for a long turn), by id; a turn waiting
        for its embedding is left out."""
        ids = sorted({int(i) for i in turn_ids})
        if not ids:
            return {}
        with self.engine.connect() as conn:
            windows = window_vectors(conn, ids, self.embedder.model_id)
        means = {turn_id: found.mean(axis=0) for turn_id, found in windows.items()}
        return {turn_id: v / (np.linalg.norm(v) or 1.0) for turn_id, v in means.items()}

    def get(self, turn_id: int) -> Turn:
        with self.engine.connect() as conn:
            found = self._fetch(conn, [turn_id])
        if not found:
            raise NotFound(f"no turn with id {turn_id}")
        return found[0]

    def turns(self, conversation_id: str | None = None, limit: int | None = None, offset: int = 0,
              newest_first: bool = False) -> list[Turn]:
        query = pinning.with_pins()
        if conversation_id is not None:
            query = query.where(turns.c.conversation_id == conversation_id)
        query = query.order_by(turns.c.id.desc() if newest_first else turns.c.id).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [_turn(r) for r in conn.execute(query)]

    def iter_turns(self, batch: int = 1000) -> Iterable[Turn]:
        after = 0
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(pinning.with_pins().where(turns.c.id > after).order_by(turns.c.id).limit(batch)).all()
            if not rows:
                return
            for row in rows:
                yield _turn(row)
            after = rows[-1].id

    def conversations(self) -> list[dict]:
        query = (
            select(conversations, func.count(turns.c.id).label("turns"))
            .select_from(conversations.outerjoin(turns, turns.c.conversation_id == conversations.c.id))
            .group_by(conversations.c.id).order_by(conversations.c.updated_at.desc())
        )
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def has_conversation(self, conversation_id: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(conversations.c.id).where(conversations.c.id == conversation_id)).first() is not None

    def latest_conversation(self) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(
                select(conversations.c.id).order_by(conversations.c.updated_at.desc()).limit(1)
            ).scalar()

    def stats(self) -> dict:
        with self.engine.connect() as conn:
            turn_count = conn.execute(select(func.count()).select_from(turns)).scalar_one()
            conversation_count = conn.execute(select(func.count()).select_from(conversations)).scalar_one()
            vector_count = conn.execute(select(func.count()).select_from(embeddings)).scalar_one()
            model, dim = get_meta(conn, "embed_model") or self.embedder.model_id, get_meta(conn, "embed_dim")
            mine = self.embedder.model_id
            waiting = pending.count(conn, mine) if pending.may_wait(conn) else len(pending.lacking(conn, mine, pending.deferred(conn)))
        db = self.data_dir / DB_NAME
        try:
            with self._lock.shared():
                self.index.refresh()
                indexed = self.store.count()
        except StoreUnavailable:
            indexed = None  # a hosted store that is down: unknown until it is back
        return {
            "data_dir": str(self.data_dir),
            "turns": turn_count,
            "conversations": conversation_count,
            "vectors": vector_count,
            "indexed": indexed,
            "store": self.store_name,
            "index_kind": self.store.index_kind if indexed != 0 else "empty",
            "embed_model": model,
            "embed_dim": int(dim) if dim else None,
            "pending_embeddings": waiting,  # stored while the embedding provider was down, or just now
            "db_bytes": sum(p.stat().st_size for p in db.parent.glob(DB_NAME + "*") if p.is_file()),
            "index_bytes": self.store.disk_bytes(),
        }

    # -- standing memories: kept for every chat (memory/pins.py) --------------------------------
    def pin(self, turn_id: int) -> Turn:
        return pinning.pin(self, turn_id)

    def unpin(self, turn_id: int) -> None:
        pinning.unpin(self, turn_id)

    def pins(self) -> list[Turn]:  # newest pin first; a forgotten turn's pin went with it
        return pinning.pinned_turns(self, _turn)

    # -- forgetting ----------------------------------------------------------------------------
    def forget(self, turn_ids: Iterable[int]) -> int:
        ids = sorted(set(int(i) for i in turn_ids))
        with self.engine.connect() as conn:
            found = set(conn.execute(select(turns.c.id).where(turns.c.id.in_(ids))).scalars())
        missing = [i for i in ids if i not in found]
        if missing:
            raise NotFound(f"no turn with id {', '.join(map(str, missing))}; nothing was forgotten")
        return self._forget(turns.c.id.in_(ids))

    def forget_conversation(self, conversation_id: str) -> int:
        if not self.has_conversation(conversation_id):
            raise NotFound(f"no conversation {conversation_id!r}; nothing was forgotten")
        return self._forget(turns.c.conversation_id == conversation_id,
                            conversations.c.id == conversation_id)

    def forget_all(self) -> int:
        return self._forget(turns.c.id.is_not(None), conversations.c.id.is_not(None), everything=True)

    def _forget(self, condition, conversation_condition=None, everything: bool = False) -> int:
        """Delete turns and what they leave behind (memory/forgetting.py), then their vectors, then
        the bytes, all under the exclusive lock: a process waiting for it is told who holds it,
        where waiting on SQLite's own lock instead ran out after 5 s ("database is locked")."""
        with self._lock.exclusive("forgetting"), storage_failures_named(self.data_dir):
            self.index.refresh()
            with self.engine.begin() as conn:
                count, vector_ids = delete_turns(conn, condition, conversation_condition, everything)
            self.index.forgotten(np.array(vector_ids, dtype=np.int64))
            scrub(self.engine)
        release_freed_memory()  # the full-text merge's buffers
        return count

    # -- model change --------------------------------------------------------------------------
    def reembed(self, progress: Progress = _no_progress) -> int:
        """Re-embed every turn with the configured model (resumable); returns how many."""
        return embedding_upkeep.reembed(self, progress)

    # -- lifecycle -----------------------------------------------------------------------------
    def close(self) -> None:
        if getattr(self, "index", None) is not None:
            try:
                self.settle_deferred()  # a reply `memchat ask` printed before embedding it
                with self._lock.exclusive("closing"):
                    self.index.close()
            finally:
                self.index = None
                self.engine.dispose()
                self._lock.close()

    def __enter__(self) -> "Memory":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _turn(row) -> Turn:
    return Turn(id=row.id, conversation_id=row.conversation_id, role=row.role, text=row.text,
                created_at=row.created_at, status=row.status, backend=row.backend, model=row.model,
                tokens=row.tokens, meta=json.loads(row.meta or "{}"), pinned_at=row.pinned_at)
