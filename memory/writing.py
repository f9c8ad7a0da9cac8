"""Writing turns: where a turn is stored.

One SQLite transaction per batch: the turn rows and their full-text rows (memory/fulltext.py: the
new turns' and their neighbours'), the conversations they belong to, and one embedding row per
chunk of each turn. Embedding happens before the transaction opens, since it is the slow part and
needs no lock on the database.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass

import numpy as np
from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from memory import fulltext, pending
from memory.pins import add_pins, check_pinnable
from memory.embedding import Embedder, Span
from memory.errors import BadInput, EmbeddingUnavailable
from memory.record import conversations, embeddings, get_meta, set_meta, turns
from memory.turn import MAX_TURN_CHARS, NewTurn, Turn, content_key, validate_role, validate_text


def new_conversation_id() -> str:
    import uuid

    return uuid.uuid4().hex[:12]


@dataclass
class EmbeddedBatch:
    """New turns with their vectors, ready to commit: chunk (i, span) of fresh[i] has vectors[j]."""

    fresh: list[tuple[NewTurn, str]]  # (record, content key)
    chunks: list[tuple[int, Span]]
    vectors: np.ndarray
    later: bool = False  # no vectors yet by choice (memory/pending.py's deferred list), not an outage


def embed_batch(engine: Engine, embedder: Embedder, batch: list[NewTurn], skip_existing: bool,
                vectors: np.ndarray | None = None, embed: bool = True, later: bool = False) -> EmbeddedBatch | None:
    """Validate a batch, drop records already stored (an import's, `skip_existing`: checked again
    in commit_batch; a new turn's repeat is refused there by the unique key) and embed the rest
    (`embed=False`, or a provider that cannot be reached: no vectors yet, the turns wait in
    memory/pending.py; `later`: the caller embeds them just after the commit). Needs no lock: it
    is the slow part."""
    now = time.time()
    prepared = []
    for record in batch:
        validate_text(record.text, MAX_TURN_CHARS)
        validate_role(record.role)
        if record.pinned_at is not None:
            check_pinnable(record.role)
            record.pinned_at = round(float(record.pinned_at), 6)
        record.conversation_id = record.conversation_id or new_conversation_id()
        # To the microsecond, as an export writes it (ISO 8601), so export → import gives the same time.
        record.created_at = round(now if record.created_at is None else float(record.created_at), 6)
        prepared.append((record, content_key(record.conversation_id, record.role, record.created_at, record.text,
                                             record.occurrence)))
    existing: set[str] = set()
    if skip_existing:  # an import, which may repeat what is stored: skipped before it is embedded
        with engine.connect() as conn:
            existing = _stored_keys(conn, [k for _, k in prepared])
    # else a new turn (the chat's, timed to the microsecond): the commit's unique key refuses a repeat
    seen: set[str] = set()
    fresh, given = [], []
    for n, (record, key) in enumerate(prepared):
        if key not in existing and key not in seen:
            seen.add(key)
            fresh.append((record, key))
            given.append(n)
    if not fresh:
        return None
    if vectors is not None:  # pre-computed: one whole-turn vector per record
        chunks = [(i, Span(0, len(r.text))) for i, (r, _) in enumerate(fresh)]
        return EmbeddedBatch(fresh, chunks, np.ascontiguousarray(vectors[given], dtype=np.float32))
    waiting = EmbeddedBatch(fresh, [], np.zeros((0, 0), dtype=np.float32))  # stored now, embedded later
    if not embed or later:
        waiting.later = later and embed
        return waiting
    try:
        chunks, vectors = embed_chunks(embedder, [r.text for r, _ in fresh])
    except EmbeddingUnavailable:  # the provider is down: store the turns now, embed them when it is back
        return waiting
    if len(chunks) == 1:  # one short turn, as the chat loop stores: recall may ask for it next
        embedder.remember_vector(fresh[0][0].text, vectors[0])
    return EmbeddedBatch(fresh, chunks, vectors)


def commit_batch(engine: Engine, model_id: str, batch: EmbeddedBatch,
                 skip_existing: bool) -> tuple[list[Turn], np.ndarray, np.ndarray]:
    """Store an embedded batch in one transaction; returns (stored turns, vector ids, vectors).

    The caller holds the data dir's exclusive lock (ids are taken here) and adds the returned
    vectors to the index after this commit. A record already stored (another process may have
    stored it since embed_batch looked) is skipped, or refused unless skip_existing.
    """
    with engine.begin() as conn:
        taken = _stored_keys(conn, [k for _, k in batch.fresh]) if skip_existing else set()
        if taken:
            batch = _without(batch, taken)
            if not batch.fresh:
                return [], np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
        fresh, vectors = batch.fresh, batch.vectors
        if batch.chunks:
            _record_model(conn, model_id, vectors.shape[1])
        elif not batch.later:
            pending.mark(conn)
        _ensure_conversations(conn, [record for record, _ in fresh])
        turn_ids = _assign_turn_ids(conn, [record.id for record, _ in fresh])
        if batch.later:
            pending.defer(conn, turn_ids)
        stored = [Turn(id=turn_id, conversation_id=r.conversation_id, role=r.role, text=r.text,
                       created_at=r.created_at, status=r.status, backend=r.backend, model=r.model,
                       tokens=r.tokens, meta=r.meta, pinned_at=r.pinned_at)
                  for turn_id, (r, _) in zip(turn_ids, fresh)]
        new_ids: dict[str, list[int]] = {}
        for t in stored:
            new_ids.setdefault(t.conversation_id, []).append(t.id)
        beside = fulltext.neighbours_of_new(conn, new_ids)
        fulltext.unindex(conn, beside)  # while the view still shows their old neighbours
        try:
            conn.execute(insert(turns), [
                dict(id=t.id, conversation_id=t.conversation_id, role=t.role, text=t.text, created_at=t.created_at,
                     status=t.status, backend=t.backend, model=t.model, tokens=t.tokens,
                     meta=json.dumps(t.meta, ensure_ascii=False), content_key=key)
                for t, (_, key) in zip(stored, fresh)
            ])
        except IntegrityError as exc:  # the whole transaction rolls back: nothing of the turn is kept
            if "content_key" in str(exc.orig):
                raise BadInput("this exact turn is already stored") from None
            raise
        fulltext.index(conn, [t.id for t in stored] + beside)
        add_pins(conn, [(t.id, t.pinned_at) for t in stored if t.pinned_at is not None])  # with their turns
        vector_ids = _insert_embeddings(conn, model_id, [t.id for t in stored], batch.chunks, vectors)
    return stored, vector_ids, vectors


def commit_vectors(engine: Engine, model_id: str, turn_ids: list[int], chunks: list[tuple[int, Span]],
                   vectors: np.ndarray, replace: bool) -> tuple[np.ndarray, np.ndarray]:
    """Store vectors for turns already stored, in one transaction: a re-embed (`replace` their old
    vectors) or the catch-up of turns stored while the provider was down or embedded after their
    commit (a turn that gained a vector from this model meanwhile, or was forgotten, in another
    process, is skipped). The caller holds the
    exclusive lock. Returns the new (vector ids, vectors) for the index."""
    with engine.begin() as conn:
        if replace:
            conn.execute(delete(embeddings).where(embeddings.c.turn_id.in_(turn_ids)))
        else:
            # Still stored and still without this model's vector: another process may have forgotten
            # or embedded a turn since it was read (embedding happens without the lock).
            lacking = {turn_id for turn_id, _ in pending.lacking(conn, model_id, turn_ids)}
            keep = [j for j, (i, _) in enumerate(chunks) if turn_ids[i] in lacking]
            chunks, vectors = [chunks[j] for j in keep], vectors[keep]
        if chunks:
            _record_model(conn, model_id, vectors.shape[1])
        return _insert_embeddings(conn, model_id, turn_ids, chunks, vectors), vectors


def _stored_keys(conn, keys: list[str]) -> set[str]:
    return set(conn.execute(select(turns.c.content_key).where(turns.c.content_key.in_(keys))).scalars())


def _without(batch: EmbeddedBatch, taken: set[str]) -> EmbeddedBatch:
    """The batch less the records whose content keys are in `taken`, chunks renumbered."""
    keep = [i for i, (_, key) in enumerate(batch.fresh) if key not in taken]
    new_index = {old: new for new, old in enumerate(keep)}
    rows = [j for j, (i, _) in enumerate(batch.chunks) if i in new_index]
    return EmbeddedBatch([batch.fresh[i] for i in keep], [(new_index[batch.chunks[j][0]], batch.chunks[j][1]) for j in rows],
                         batch.vectors[rows], batch.later)


def embed_chunks(embedder: Embedder, texts: list[str]) -> tuple[list[tuple[int, Span]], np.ndarray]:
    """Each text split into windows that fit the model, and one vector per window."""
    chunks = [(i, span) for i, body in enumerate(texts) for span in embedder.split(body)]
    return chunks, embedder.encode([texts[i][s.start : s.end] for i, s in chunks])


def _insert_embeddings(conn, model_id: str, turn_ids: list[int], chunks: list[tuple[int, Span]],
                       vectors: np.ndarray) -> np.ndarray:
    """One embedding row per chunk (chunk i of turn_ids[n]); returns their ids, the index's vector ids."""
    if not chunks:
        return np.zeros(0, dtype=np.int64)
    first = _next_id(conn, "embeddings")
    vector_ids = np.arange(first, first + len(chunks), dtype=np.int64)
    numbers: dict[int, int] = {}
    rows = []
    for j, (i, span) in enumerate(chunks):
        number = numbers.get(i, 0)
        numbers[i] = number + 1
        rows.append(dict(id=int(vector_ids[j]), turn_id=turn_ids[i], chunk=number, start=span.start, end=span.end,
                         model=model_id, vector=vectors[j].tobytes()))
    conn.execute(insert(embeddings), rows)
    return vector_ids

def _assign_turn_ids(conn, wanted: list[int | None]) -> list[int]:
    """Ids for new turns: the record's own id where it asks for a free one (a re-imported export
    keeps its ids), otherwise the next ids in sequence. Explicit ids keep the batch a single
    executemany; the data dir's exclusive lock guarantees no other writer takes ids meanwhile."""
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

def _record_model(conn, model_id: str, dim: int) -> None:
    """Name the store's embedding model on its first write (checked once per SQLite connection)."""
    if conn.info.get("recorded_model") == model_id:
        return
    stored = get_meta(conn, "embed_model")
    if stored is None:
        set_meta(conn, "embed_model", model_id)
        set_meta(conn, "embed_dim", str(dim))
    else:  # only a committed value is remembered: this transaction could still roll back
        conn.info["recorded_model"] = stored

def _ensure_conversations(conn, records: list[NewTurn]) -> None:
    """Create the conversations a batch writes to (with the title and times an import gives), and
    move their updated_at forward."""
    latest: dict[str, NewTurn] = {}
    for record in records:
        if record.conversation_id not in latest or record.created_at > latest[record.conversation_id].created_at:
            latest[record.conversation_id] = record
    for cid, record in latest.items():
        moved = conn.execute(update(conversations).where(conversations.c.id == cid)
                             .values(updated_at=func.max(conversations.c.updated_at, record.created_at)))
        if moved.rowcount == 0:  # a new conversation
            own = [r for r in records if r.conversation_id == cid]
            first = min(r.created_at for r in own)
            title = next((r.conversation_title for r in own if r.conversation_title), "")
            created = next((r.conversation_created_at for r in own if r.conversation_created_at is not None), first)
            given = [r.conversation_updated_at for r in own if r.conversation_updated_at is not None]
            conn.execute(insert(conversations).values(id=cid, title=title, created_at=created,
                                                      updated_at=max([record.created_at, *given])))


def _next_id(conn, table: str) -> int:
    """The id AUTOINCREMENT would give next: past every id ever used, deleted ones included."""
    seq = conn.execute(text("SELECT seq FROM sqlite_sequence WHERE name = :t"), {"t": table}).scalar()
    return int(seq or 0) + 1
