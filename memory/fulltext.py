"""The full-text index: each turn indexed with the words of the turns on either side of it.

In a conversation the words of a question and of its answer sit in different turns ("Where did
you go last summer?" / "Mostly Portugal…"). So the FTS5 index has three columns per turn: its own
text, the previous turn's text and the next turn's text (same conversation, by id). Recall ranks
with bm25 weighting the neighbours' columns at NEIGHBOUR_WEIGHT, so a turn matches best on its
own words and still matches on its neighbours'. On the LoCoMo dev split this took recall@10
from 0.715 to 0.783 (docs/recall.md); it costs no embedding and about 3x the index postings.

The index is external-content over the view `turns_in_context`, which computes the three columns
from `turns`. FTS5 removes a row only when given exactly the values it indexed, so every change
to turns goes through here in three steps: `unindex` the rows whose columns are about to change
(read from the view while it still shows the old values), change the turns, `index` them again.
Turns are inserted by memory/writing.py and deleted by Memory._forget; nothing updates a turn's
text. A forgotten turn's words leave its neighbours' rows too, so forgetting leaves no trace.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Iterable

from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection

NEIGHBOUR_WEIGHT = 0.5  # bm25 weight of the previous/next turn's words; the turn's own count 1.0
_BATCH = 500  # ids per IN (...) list

# A failed reply's text is memchat's placeholder ("(no reply: connection refused)"), not something
# said: it is indexed as empty, in its own row and in its neighbours'. A turn's status is final
# when it is written (nothing updates it), so the rows stay what FTS5 indexed.
_SAID = "CASE WHEN {t}.status = 'failed' THEN '' ELSE {t}.text END"
VIEW_DDL = (
    f"CREATE VIEW turns_in_context AS SELECT t.id AS id, {_SAID.format(t='t')} AS text, "
    f"coalesce((SELECT {_SAID.format(t='p')} FROM turns p WHERE p.conversation_id = t.conversation_id "
    "AND p.id < t.id ORDER BY p.id DESC LIMIT 1), '') AS before, "
    f"coalesce((SELECT {_SAID.format(t='n')} FROM turns n WHERE n.conversation_id = t.conversation_id "
    "AND n.id > t.id ORDER BY n.id LIMIT 1), '') AS after "
    "FROM turns t"
)


def fts_ddl(tokenizer: str) -> list[str]:
    return [
        VIEW_DDL,
        f"CREATE VIRTUAL TABLE turns_fts USING fts5(text, before, after, content='turns_in_context', "
        f"content_rowid='id', tokenize='{tokenizer}')",
        "CREATE VIRTUAL TABLE turns_fts_vocab USING fts5vocab(turns_fts, 'row')",
    ]


def index(conn: Connection, turn_ids: Iterable[int]) -> None:
    """Add the rows of these (existing) turns, with their current neighbours."""
    _each_batch(conn, turn_ids, "INSERT INTO turns_fts(rowid, text, before, after) "
                                "SELECT id, text, before, after FROM turns_in_context WHERE id IN :ids")


def unindex(conn: Connection, turn_ids: Iterable[int]) -> None:
    """Remove the rows of these turns; call before the turns or their neighbours change."""
    _each_batch(conn, turn_ids, "INSERT INTO turns_fts(turns_fts, rowid, text, before, after) "
                                "SELECT 'delete', id, text, before, after FROM turns_in_context WHERE id IN :ids")


def unindex_all(conn: Connection) -> None:
    conn.exec_driver_sql("INSERT INTO turns_fts(turns_fts) VALUES ('delete-all')")


def rebuild(conn: Connection) -> None:
    conn.exec_driver_sql("INSERT INTO turns_fts(turns_fts) VALUES ('rebuild')")


def neighbours_of_new(conn: Connection, new_ids: dict[str, list[int]]) -> list[int]:
    """Existing turns beside the ids about to be inserted ({conversation: ids}): their rows change."""
    touched = []
    for conversation, ids in new_ids.items():
        low, high = min(ids), max(ids)
        existing = _ids_around(conn, conversation, low, high)
        touched += _beside(existing | set(ids), set(ids))
    return touched


def neighbours_of_deleted(conn: Connection, deleted: list[int]) -> list[int]:
    """Turns that stay, beside turns about to be deleted: their rows change."""
    by_conversation: dict[str, list[int]] = defaultdict(list)
    for batch in _batches(deleted):
        rows = conn.execute(text("SELECT conversation_id, id FROM turns WHERE id IN :ids")
                            .bindparams(bindparam("ids", expanding=True)), {"ids": batch})
        for conversation, turn_id in rows:
            by_conversation[conversation].append(turn_id)
    touched = []
    for conversation, ids in by_conversation.items():
        touched += _beside(_ids_around(conn, conversation, min(ids), max(ids)) | set(ids), set(ids))
    return touched


def _beside(ids: set[int], marked: set[int]) -> list[int]:
    """The unmarked ids directly before or after a marked one, in id order."""
    line = sorted(ids)
    return [x for i, x in enumerate(line) if x not in marked and (
        (i > 0 and line[i - 1] in marked) or (i + 1 < len(line) and line[i + 1] in marked))]


def _ids_around(conn: Connection, conversation: str, low: int, high: int) -> set[int]:
    """Ids of the conversation's turns from the one before `low` to the one after `high`."""
    rows = conn.execute(text(
        "SELECT id FROM turns WHERE conversation_id = :c AND id BETWEEN "
        "coalesce((SELECT max(id) FROM turns WHERE conversation_id = :c AND id < :low), :low) AND "
        "coalesce((SELECT min(id) FROM turns WHERE conversation_id = :c AND id > :high), :high)"),
        {"c": conversation, "low": low, "high": high})
    return {r[0] for r in rows}


def _each_batch(conn: Connection, ids: Iterable[int], sql: str) -> None:
    statement = text(sql).bindparams(bindparam("ids", expanding=True))
    for batch in _batches(ids):
        conn.execute(statement, {"ids": batch})


def _batches(ids: Iterable[int]):
    ids = sorted(set(int(i) for i in ids))
    for start in range(0, len(ids), _BATCH):
        yield ids[start : start + _BATCH]
