"""Turns waiting for their vectors: stored while the embedding provider could not be reached.

Such a turn is in SQLite with its full-text row but no embedding row, so full-text recall finds
it at once and dense recall once it is embedded. A flag in `meta` says whether any may wait, so the
common case (none) costs one key lookup, never a scan of every turn; counting and finding them
is the same query a re-embed uses (turns without a vector from the configured model).
"""
from __future__ import annotations

import json

from sqlalchemy import text

from memory.record import get_meta, in_list, set_meta

FLAG = "embed_pending"
_WAITING = "FROM turns t WHERE NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.turn_id = t.id AND e.model = :m)"


def mark(conn) -> None:
    """Some turns of this transaction were stored without vectors."""
    set_meta(conn, FLAG, "1")


def may_wait(conn) -> bool:
    return get_meta(conn, FLAG) == "1"


def clear(conn) -> None:
    set_meta(conn, FLAG, "0")


def count(conn, model_id: str) -> int:
    """Turns without a vector from `model_id`."""
    return conn.execute(text(f"SELECT count(*) {_WAITING}"), {"m": model_id}).scalar_one()


def oldest(conn, model_id: str, n: int) -> list[tuple[int, str]]:
    """Up to n (turn id, text) without a vector from `model_id`, oldest first."""
    return [(r[0], r[1]) for r in conn.execute(text(f"SELECT t.id, t.text {_WAITING} ORDER BY t.id LIMIT :n"),
                                                {"m": model_id, "n": n})]


# A chat reply is committed before its turn returns and embedded just after (the person waits for
# neither): its id is listed here in the same transaction, so a crash in between leaves a turn the
# next open or write embeds. A list of ids, not a scan: the common case costs one key lookup.
DEFERRED = "embed_deferred"


def defer(conn, turn_ids: list[int]) -> None:
    set_meta(conn, DEFERRED, json.dumps(sorted({*deferred(conn), *turn_ids})))


def deferred(conn) -> list[int]:
    return json.loads(get_meta(conn, DEFERRED) or "[]")


def settle(conn, turn_ids: list[int]) -> None:
    """These are embedded (or gone, or moved to the outage path): off the list."""
    done = set(turn_ids)
    set_meta(conn, DEFERRED, json.dumps([i for i in deferred(conn) if i not in done]))


def lacking(conn, model_id: str, turn_ids: list[int]) -> list[tuple[int, str]]:
    """(turn id, text) of those of turn_ids still stored without a vector from `model_id`."""
    if not turn_ids:
        return []
    rows = conn.execute(text(f"SELECT t.id, t.text {_WAITING} AND t.id IN {in_list(turn_ids)} ORDER BY t.id"),
                        {"m": model_id})
    return [(r[0], r[1]) for r in rows]
