"""Turns waiting for their vectors: stored while the embedding provider could not be reached.

Such a turn is in SQLite with its full-text row but no embedding row, so full-text recall finds
it at once and dense recall once it is embedded. A flag in `meta` says whether any may wait, so the
common case (none) costs one key lookup, never a scan of every turn; counting and finding them
is the same query a re-embed uses (turns without a vector from the configured model).
"""
from __future__ import annotations

from sqlalchemy import text

from memory.record import get_meta, set_meta

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
