"""The facade the assistant uses: remember(), recall(), forget(), and the store's upkeep.

Order of every write: one SQL transaction (turn row, FTS row via trigger, embedding blobs), commit,
then the vector index. If the process dies between the two, the next open catches the index up
from SQL, which always wins.
"""
from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
from sqlalchemy import bindparam, delete, func, insert, select, text, update

from memory import recall as R
from memory.datadir import DataDirLock, ensure_private_dir
from memory.embedding import Embedder, Span
from memory.errors import BadInput, ModelMismatch, NotFound
from memory.record import conversations, embeddings, get_meta, open_record, scrub, set_meta, turns
from memory.stores import IndexState, open_store
from memory.turn import Hit, NewTurn, Turn, content_key, validate_role, validate_text

# progress(phase, done, total): the CLI draws a bar from it; memory/ draws nothing itself.
Progress = Callable[[str, int, int], None]
DB_NAME = "memchat.db"
SAVE_EVERY = 1000  # unsaved index additions before the index file is rewritten
CANDIDATES = 50  # per signal, before fusion


def _no_progress(phase: str, done: int, total: int) -> None:
    pass


def new_conversation_id() -> str:
    return uuid.uuid4().hex[:12]


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
    ):
        self.data_dir = ensure_private_dir(Path(data_dir))
        self._lock = DataDirLock(self.data_dir)
        self._lock.acquire()
        try:
            self.engine = open_record(self.data_dir / DB_NAME)
            self.embedder = embedder or Embedder()
            if check_model:
                self._check_model()
            with self.engine.begin() as conn:
                dim = get_meta(conn, "embed_dim")
                store_id = get_meta(conn, "store_id")
                if store_id is None:  # names this store's tables in shared servers (pgvector, Milvus)
                    store_id = uuid.uuid4().hex[:12]
                    set_meta(conn, "store_id", store_id)
                # The store the data dir last used, unless the caller names one.
                self.store_name = store or get_meta(conn, "vector_store", "faiss")
            self.store_options = store_options or {}  # per store name: {"faiss": {"kind": "ivf"}, ...}
            self.store = open_store(self.store_name, self.data_dir, int(dim) if dim else None, store_id,
                                    **self.store_options.get(self.store_name, {}))
            self._unsaved = 0
            self.sync_index(progress or _no_progress)
        except BaseException:
            self._lock.release()
            raise

    # -- model identity ------------------------------------------------------------------------
    def _check_model(self) -> None:
        with self.engine.connect() as conn:
            stored = get_meta(conn, "embed_model")
            others = conn.execute(
                select(embeddings.c.model, func.count()).where(embeddings.c.model != self.embedder.model_id)
                .group_by(embeddings.c.model)
            ).all()
        if others or (stored and stored != self.embedder.model_id):
            found = ", ".join(f"{m} ({n} vectors)" for m, n in others) or stored
            raise ModelMismatch(
                f"this store's memories were embedded with {found}, but the configured model is "
                f"{self.embedder.model_id}; run `memchat memory reembed` to re-embed them with it, "
                f"or set MEMCHAT_EMBED_MODEL={stored or others[0][0]}"
            )

    # -- index upkeep --------------------------------------------------------------------------
    def _sql_state(self, conn) -> IndexState:
        generation = int(get_meta(conn, "index_generation", "0"))
        max_id, count = conn.execute(select(func.coalesce(func.max(embeddings.c.id), 0), func.count()).select_from(embeddings)).one()
        return IndexState(generation, int(max_id), int(count))

    def sync_index(self, progress: Progress = _no_progress, force: bool = False) -> str:
        """Bring the vector index in line with SQL: nothing, catch up, or rebuild. Returns which."""
        with self.engine.connect() as conn:
            truth = self._sql_state(conn)
        have = self.store.state()
        if not force and have == truth and self.store.count() == truth.count:
            return "current"
        catch_up = (
            not force and have is not None and have.generation == truth.generation
            and have.max_id <= truth.max_id and self.store.count() == have.count
        )
        if not catch_up:
            with self.engine.connect() as conn:
                dim = get_meta(conn, "embed_dim")
            self.store.reset(int(dim) if dim else None)
        after = have.max_id if catch_up else 0
        self._add_rows_to_index(after, truth.count - (have.count if catch_up else 0), progress)
        if self.store.count() != truth.count:  # should not happen; SQL wins, so start over
            self.store.reset(self.store.dim)
            self._add_rows_to_index(0, truth.count, progress)
        self.store.save(truth)
        self._unsaved = 0
        return "caught up" if catch_up else "rebuilt"

    def migrate_store(self, target: str, progress: Progress = _no_progress) -> int:
        """Make `target` this data dir's vector store: copy the vectors from SQLite (no re-embedding)."""
        with self.engine.connect() as conn:
            dim = get_meta(conn, "embed_dim")
            store_id = get_meta(conn, "store_id")
        new_store = open_store(target, self.data_dir, int(dim) if dim else None, store_id,
                               **self.store_options.get(target, {}))
        old_store, self.store = self.store, new_store
        try:
            self.sync_index(progress, force=True)
        except BaseException:
            self.store = old_store
            new_store.close()
            raise
        old_store.close()
        self.store_name = target
        with self.engine.begin() as conn:
            set_meta(conn, "vector_store", target)
        return self.store.count()

    def _add_rows_to_index(self, after_id: int, total: int, progress: Progress, batch: int = 10_000) -> None:
        done = 0
        with self.engine.connect() as conn:
            while True:
                rows = conn.execute(
                    select(embeddings.c.id, embeddings.c.vector).where(embeddings.c.id > after_id)
                    .order_by(embeddings.c.id).limit(batch)
                ).all()
                if not rows:
                    break
                ids = np.array([r[0] for r in rows], dtype=np.int64)
                vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)
                self.store.add(ids, vectors)
                after_id = int(ids[-1])
                done += len(rows)
                progress("indexing", done, max(total, done))

    def _index_added(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self.store.add(ids, vectors)
        self._unsaved += len(ids)
        if self._unsaved >= SAVE_EVERY:
            self.save_index()

    def save_index(self) -> None:
        with self.engine.connect() as conn:
            self.store.save(self._sql_state(conn))
        self._unsaved = 0

    # -- writing -------------------------------------------------------------------------------
    def new_conversation(self, title: str = "") -> str:
        cid = new_conversation_id()
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(insert(conversations).values(id=cid, title=title, created_at=now, updated_at=now))
        return cid

    def remember(self, text_: str, role: str = "user", conversation_id: str | None = None, **fields) -> Turn:
        """Store one turn durably (SQL commit, then the index) and return it."""
        turn = NewTurn(text=text_, role=role, conversation_id=conversation_id, **fields)
        stored = self._store_batch([turn], skip_existing=False)
        return stored[0]

    def remember_many(self, records: Iterable[NewTurn], total: int | None = None,
                      progress: Progress = _no_progress, batch_size: int = 256,
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
        self.save_index()
        return ImportResult(added, skipped)

    def _store_batch(self, batch: list[NewTurn], skip_existing: bool,
                     vectors: np.ndarray | None = None) -> list[Turn]:
        now = time.time()
        prepared = []
        for record in batch:
            validate_text(record.text)
            validate_role(record.role)
            record.conversation_id = record.conversation_id or new_conversation_id()
            record.created_at = now if record.created_at is None else float(record.created_at)
            prepared.append((record, content_key(record.conversation_id, record.role, record.created_at, record.text)))
        with self.engine.connect() as conn:
            existing = set(
                conn.execute(
                    select(turns.c.content_key).where(turns.c.content_key.in_([k for _, k in prepared]))
                ).scalars()
            )
        if existing and not skip_existing:
            raise BadInput("this exact turn is already stored")
        seen: set[str] = set()
        fresh, given = [], []
        for n, (record, key) in enumerate(prepared):
            if key not in existing and key not in seen:
                seen.add(key)
                fresh.append((record, key))
                given.append(n)
        if not fresh:
            return []

        if vectors is not None:  # pre-computed: one whole-turn vector per record
            chunks = [(i, Span(0, len(r.text))) for i, (r, _) in enumerate(fresh)]
            vectors = np.ascontiguousarray(vectors[given], dtype=np.float32)
        else:
            # Embed outside the transaction: it is the slow part and needs no lock on the database.
            chunks = [(i, span) for i, (r, _) in enumerate(fresh) for span in self.embedder.split(r.text)]
            vectors = self.embedder.encode([fresh[i][0].text[s.start : s.end] for i, s in chunks])
            if len(chunks) == 1:  # one short turn, as the chat loop stores: recall may ask for it next
                self.embedder.remember_vector(fresh[0][0].text, vectors[0])

        with self.engine.begin() as conn:
            self._record_model(conn, vectors.shape[1])
            self._ensure_conversations(conn, [record for record, _ in fresh])
            turn_ids = self._assign_turn_ids(conn, [record.id for record, _ in fresh])
            stored = [Turn(id=turn_id, conversation_id=r.conversation_id, role=r.role, text=r.text,
                           created_at=r.created_at, status=r.status, backend=r.backend, model=r.model,
                           tokens=r.tokens, meta=r.meta)
                      for turn_id, (r, _) in zip(turn_ids, fresh)]
            conn.execute(insert(turns), [
                dict(id=t.id, conversation_id=t.conversation_id, role=t.role, text=t.text, created_at=t.created_at,
                     status=t.status, backend=t.backend, model=t.model, tokens=t.tokens,
                     meta=json.dumps(t.meta, ensure_ascii=False), content_key=key)
                for t, (_, key) in zip(stored, fresh)
            ])
            first_vector_id = _next_id(conn, "embeddings")
            vector_ids = np.arange(first_vector_id, first_vector_id + len(chunks), dtype=np.int64)
            conn.execute(insert(embeddings), [
                dict(id=int(vector_ids[j]), turn_id=stored[i].id, chunk=n, start=span.start, end=span.end,
                     model=self.embedder.model_id, vector=vectors[j].tobytes())
                for n, (j, (i, span)) in _chunk_numbers(chunks)
            ])
        self._index_added(vector_ids, vectors)
        return stored

    @staticmethod
    def _assign_turn_ids(conn, wanted: list[int | None]) -> list[int]:
        """Ids for new turns: the record's own id where it asks for a free one (a re-imported export
        keeps its ids), otherwise the next ids in sequence. Explicit ids keep the batch a single
        executemany; the data dir lock guarantees no other writer takes ids meanwhile."""
        asked = [i for i in wanted if i is not None]
        taken = set(conn.execute(select(turns.c.id).where(turns.c.id.in_(asked))).scalars()) if asked else set()
        next_id = max(_next_id(conn, "turns"), max(asked, default=0) + 1)
        ids, used = [], set()
        for want in wanted:
            if want is not None and want not in taken and want not in used:
                ids.append(want)
                used.add(want)
            else:
                ids.append(next_id)
                next_id += 1
        return ids

    def _record_model(self, conn, dim: int) -> None:
        if get_meta(conn, "embed_model") is None:
            set_meta(conn, "embed_model", self.embedder.model_id)
            set_meta(conn, "embed_dim", str(dim))

    @staticmethod
    def _ensure_conversations(conn, records: list[NewTurn]) -> None:
        """Create the conversations a batch writes to, and move their updated_at forward."""
        latest: dict[str, NewTurn] = {}
        for record in records:
            if record.conversation_id not in latest or record.created_at > latest[record.conversation_id].created_at:
                latest[record.conversation_id] = record
        existing = set(conn.execute(select(conversations.c.id).where(conversations.c.id.in_(list(latest)))).scalars())
        for cid, record in latest.items():
            if cid in existing:
                conn.execute(update(conversations).where(conversations.c.id == cid)
                             .values(updated_at=func.max(conversations.c.updated_at, record.created_at)))
            else:
                first = min((r.created_at for r in records if r.conversation_id == cid))
                title = next((r.conversation_title for r in records if r.conversation_id == cid and r.conversation_title), "")
                conn.execute(insert(conversations).values(id=cid, title=title, created_at=first,
                                                          updated_at=record.created_at))

    def set_status(self, turn_id: int, status: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(turns).where(turns.c.id == turn_id).values(status=status))

    def rename_conversation(self, conversation_id: str, title: str) -> None:
        with self.engine.begin() as conn:
            result = conn.execute(update(conversations).where(conversations.c.id == conversation_id).values(title=title))
        if result.rowcount == 0:
            raise NotFound(f"no conversation {conversation_id!r}")

    # -- reading -------------------------------------------------------------------------------
    def recall(self, query: str, k: int = 10, flt: R.RecallFilter | None = None,
               weights: R.RecallWeights | None = None) -> list[Hit]:
        flt = flt or R.RecallFilter()
        weights = weights or R.RecallWeights()
        n = max(CANDIDATES, k)
        with self.engine.connect() as conn:
            rankings: dict[str, list[int]] = {}
            similarity: dict[int, float] = {}
            if weights.dense and self.store.count():
                dense = R.dense_candidates(conn, self.store, self.embedder.encode_query(query), n, flt)
                rankings["dense"] = [turn_id for turn_id, _ in dense]
                similarity = dict(dense)
            if weights.lexical:
                rankings["lexical"] = R.lexical_candidates(conn, query, n, flt)
            if weights.recency:
                pool = set().union(*rankings.values()) if rankings else set()
                rankings["recency"] = R.recency_ranking(conn, pool) if pool else []
            signal_weights = {"dense": weights.dense, "lexical": weights.lexical, "recency": weights.recency,
                              "context": weights.context}
            fused = R.fuse(rankings, signal_weights)
            if weights.context and fused:
                # The turns next to a strong hit: the answer to a question often sits beside the words
                # that match it ("Where did you go?" / "Lisbon!").
                rankings["context"] = R.context_ranking(conn, [i for i, _, _ in fused[:R.CONTEXT_SOURCES]], flt)
                fused = R.fuse(rankings, signal_weights)
            fused = fused[:k]
            by_id = {t.id: t for t in self._fetch(conn, [turn_id for turn_id, _, _ in fused])}
        return [Hit(by_id[i], score, signals, similarity.get(i)) for i, score, signals in fused if i in by_id]

    @staticmethod
    def _fetch(conn, ids: list[int]) -> list[Turn]:
        if not ids:
            return []
        rows = conn.execute(select(turns).where(turns.c.id.in_(ids))).all()
        return [_turn(r) for r in rows]

    def get(self, turn_id: int) -> Turn:
        with self.engine.connect() as conn:
            found = self._fetch(conn, [turn_id])
        if not found:
            raise NotFound(f"no turn with id {turn_id}")
        return found[0]

    def turns(self, conversation_id: str | None = None, limit: int | None = None, offset: int = 0,
              newest_first: bool = False) -> list[Turn]:
        query = select(turns)
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
                rows = conn.execute(select(turns).where(turns.c.id > after).order_by(turns.c.id).limit(batch)).all()
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
            model = get_meta(conn, "embed_model") or self.embedder.model_id
            dim = get_meta(conn, "embed_dim")
        db = self.data_dir / DB_NAME
        return {
            "data_dir": str(self.data_dir),
            "turns": turn_count,
            "conversations": conversation_count,
            "vectors": vector_count,
            "indexed": self.store.count(),
            "store": self.store_name,
            "index_kind": getattr(self.store, "index_kind", self.store_name) if self.store.count() else "empty",
            "embed_model": model,
            "embed_dim": int(dim) if dim else None,
            "db_bytes": sum(p.stat().st_size for p in db.parent.glob(DB_NAME + "*") if p.is_file()),
            "index_bytes": self.store.disk_bytes() if hasattr(self.store, "disk_bytes") else None,
        }

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
        count = self._forget(turns.c.conversation_id == conversation_id)
        with self.engine.begin() as conn:
            conn.execute(delete(conversations).where(conversations.c.id == conversation_id))
        scrub(self.engine)
        return count

    def forget_all(self) -> int:
        count = self._forget(turns.c.id.is_not(None))
        with self.engine.begin() as conn:
            conn.execute(delete(conversations))
        scrub(self.engine)
        return count

    def _forget(self, condition) -> int:
        """Delete turns (their FTS rows and embeddings go with them), then the vectors, then the bytes."""
        with self.engine.begin() as conn:
            vector_ids = list(conn.execute(
                select(embeddings.c.id).join(turns, turns.c.id == embeddings.c.turn_id).where(condition)).scalars())
            count = conn.execute(delete(turns).where(condition)).rowcount
            generation = int(get_meta(conn, "index_generation", "0")) + 1
            set_meta(conn, "index_generation", str(generation))
        self.store.delete(np.array(vector_ids, dtype=np.int64))
        self.save_index()  # rewrite the index file now, so the vectors are gone from disk too
        scrub(self.engine)
        return count

    # -- model change --------------------------------------------------------------------------
    def reembed(self, progress: Progress = _no_progress, batch: int = 256) -> int:
        """Re-embed every turn with the configured model. Resumable: turns already embedded with it
        are skipped, so an interrupted run picks up where it stopped."""
        model = self.embedder.model_id
        with self.engine.connect() as conn:
            todo = conn.execute(text(
                "SELECT count(*) FROM turns t WHERE NOT EXISTS "
                "(SELECT 1 FROM embeddings e WHERE e.turn_id = t.id AND e.model = :m)"), {"m": model}).scalar_one()
        done = 0
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(text(
                    "SELECT t.id, t.text FROM turns t WHERE NOT EXISTS "
                    "(SELECT 1 FROM embeddings e WHERE e.turn_id = t.id AND e.model = :m) ORDER BY t.id LIMIT :n"),
                    {"m": model, "n": batch}).all()
            if not rows:
                break
            chunks = [(i, span) for i, (_, body) in enumerate(rows) for span in self.embedder.split(body)]
            vectors = self.embedder.encode([rows[i][1][s.start : s.end] for i, s in chunks])
            with self.engine.begin() as conn:
                turn_ids = [r[0] for r in rows]
                conn.execute(delete(embeddings).where(embeddings.c.turn_id.in_(turn_ids)))
                conn.execute(insert(embeddings), [
                    dict(turn_id=rows[i][0], chunk=n, start=span.start, end=span.end, model=model,
                         vector=vectors[j].tobytes())
                    for n, (j, (i, span)) in _chunk_numbers(chunks)
                ])
            done += len(rows)
            progress("re-embedding", done, max(todo, done))
        with self.engine.begin() as conn:
            set_meta(conn, "embed_model", model)
            set_meta(conn, "embed_dim", str(self.embedder.dim))
            generation = int(get_meta(conn, "index_generation", "0")) + 1
            set_meta(conn, "index_generation", str(generation))
        self.store.reset(self.embedder.dim)
        self.sync_index(progress, force=True)
        scrub(self.engine)
        return done

    # -- lifecycle -----------------------------------------------------------------------------
    def close(self) -> None:
        if getattr(self, "store", None) is not None:
            if self._unsaved:
                self.save_index()
            self.store.close()
            self.store = None
            self.engine.dispose()
            self._lock.release()

    def __enter__(self) -> "Memory":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _next_id(conn, table: str) -> int:
    """The id AUTOINCREMENT would give next: past every id ever used, deleted ones included."""
    seq = conn.execute(text("SELECT seq FROM sqlite_sequence WHERE name = :t"), {"t": table}).scalar()
    return int(seq or 0) + 1


def _chunk_numbers(chunks):
    """Yield (chunk number within its turn, (vector row, (turn index, span))) for embedding rows."""
    seen: dict[int, int] = {}
    for j, (i, span) in enumerate(chunks):
        n = seen.get(i, 0)
        seen[i] = n + 1
        yield n, (j, (i, span))


def _turn(row) -> Turn:
    return Turn(id=row.id, conversation_id=row.conversation_id, role=row.role, text=row.text,
                created_at=row.created_at, status=row.status, backend=row.backend, model=row.model,
                tokens=row.tokens, meta=json.loads(row.meta or "{}"))
