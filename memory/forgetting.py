"""Forgetting: where a turn leaves every place it was written.

One transaction deletes the turns (their embedding rows by cascade), rewrites the full-text rows of
their neighbours (memory/fulltext.py) and tidies their conversations: a conversation left with no
turn is deleted, so its title and its id (which may come from an import) go too; one that keeps
turns but was named after a forgotten message (the chat names a conversation after its first
message) is named again after the first message left. A title the person gave is theirs: kept.
The caller then takes the vectors out of the index and scrubs the file bytes (record.scrub), all
under the data dir's exclusive lock.
"""
from __future__ import annotations

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Connection

from memory import fulltext
from memory.record import bump_generation, conversations, embeddings, turns

TITLE_CHARS = 60


def title_from(text: str) -> str:
    """A conversation's name made from a message: its first words, on one line."""
    return " ".join(text.split())[:TITLE_CHARS]


def delete_turns(conn: Connection, condition, conversation_condition=None, everything: bool = False) -> tuple[int, list[int]]:
    """Delete the turns matching `condition` (and the conversations matching `conversation_condition`)
    in the caller's transaction; returns (turns deleted, the vector ids the index must drop)."""
    vector_ids = list(conn.execute(
        select(embeddings.c.id).join(turns, turns.c.id == embeddings.c.turn_id).where(condition)).scalars())
    if everything:
        beside, touched = [], {}
        fulltext.unindex_all(conn)
    else:
        doomed = conn.execute(select(turns.c.id, turns.c.conversation_id).where(condition)).all()
        touched = {}
        for turn_id, cid in doomed:
            touched.setdefault(cid, []).append(turn_id)
        beside = fulltext.neighbours_of_deleted(conn, [turn_id for turn_id, _ in doomed])
        fulltext.unindex(conn, [turn_id for turn_id, _ in doomed] + beside)  # their rows hold the forgotten words
    forgotten_titles = _titles_made_from(conn, touched) if conversation_condition is None else {}
    count = conn.execute(delete(turns).where(condition)).rowcount
    fulltext.index(conn, beside)
    if conversation_condition is not None:
        conn.execute(delete(conversations).where(conversation_condition))
    else:
        _tidy_conversations(conn, list(touched), forgotten_titles)
    bump_generation(conn)
    return count, vector_ids


def _titles_made_from(conn: Connection, touched: dict[str, list[int]]) -> dict[str, set[str]]:
    """Per touched conversation, the titles its doomed turns would have given it (read before the delete)."""
    made: dict[str, set[str]] = {}
    for cid, ids in touched.items():
        for start in range(0, len(ids), 500):
            texts = conn.execute(select(turns.c.text).where(turns.c.id.in_(ids[start:start + 500]))).scalars()
            made.setdefault(cid, set()).update(title_from(t) for t in texts)
    return made


def _tidy_conversations(conn: Connection, touched: list[str], forgotten_titles: dict[str, set[str]]) -> None:
    for cid in touched:
        left = conn.execute(select(func.count()).select_from(turns).where(turns.c.conversation_id == cid)).scalar_one()
        if not left:
            conn.execute(delete(conversations).where(conversations.c.id == cid))
            continue
        title = conn.execute(select(conversations.c.title).where(conversations.c.id == cid)).scalar()
        if title and title in forgotten_titles.get(cid, ()):
            first = conn.execute(select(turns.c.text).where(turns.c.conversation_id == cid, turns.c.role == "user")
                                 .order_by(turns.c.id).limit(1)).scalar()
            conn.execute(update(conversations).where(conversations.c.id == cid)
                         .values(title=title_from(first) if first else ""))
