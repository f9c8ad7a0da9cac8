"""Standing memories: the turns the person pinned, which hold for every chat.

A pin is a row of `pins` (memory/record.py): the turn it names and when it was pinned, UTC. It
holds no text of its own, and ON DELETE CASCADE takes it with its turn, so every forget (a turn, a
conversation, everything; from the CLI, the browser or a search) removes the pin in the forget's
own transaction, and record.scrub leaves no byte of it. Every Turn read from the store says when it
was pinned (`pinned_at`, None if not), so an export writes it on the turn's line and an import gives
it back with the turn (memory/writing.py): a re-import adds nothing, pins included.

Only what the person said can be pinned: the prompt gives standing memories to the model as the
person's own instructions and preferences (assistant/prompt.py).
"""
from __future__ import annotations

import time

from sqlalchemy import Select, delete, insert, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection

from memory.errors import BadInput, NotFound, storage_failures_named
from memory.record import pins, turns


def with_pins() -> Select:
    """SELECT every column of turns, and when each was pinned (NULL: not pinned)."""
    return select(turns, pins.c.pinned_at).select_from(turns.outerjoin(pins, pins.c.turn_id == turns.c.id))


# The same, compiled once, as SQL for exec_driver_sql (recall's row fetch, where compiling the
# select on every call cost ~0.5 ms).
WITH_PINS = str(with_pins().compile(dialect=sqlite.dialect()))


def check_pinnable(role: str) -> None:
    if role != "user":
        raise BadInput(f"only what you said can be a standing memory, not a turn of role {role!r} (store the "
                       "text as yours with `memchat memory add TEXT`, then pin that)")


def add_pins(conn: Connection, pinned: list[tuple[int, float]]) -> None:
    """Pin (turn id, pinned_at) pairs in the caller's transaction: an import's, with its turns."""
    if pinned:
        conn.execute(insert(pins).prefix_with("OR IGNORE"), [{"turn_id": t, "pinned_at": at} for t, at in pinned])


def pin(memory, turn_id: int):
    """Keep a stored turn of the person's for every chat; pinning it again keeps its first time."""
    with memory._lock.exclusive("pinning a memory"), storage_failures_named(memory.data_dir), \
            memory.engine.begin() as conn:
        row = conn.execute(with_pins().where(turns.c.id == turn_id)).first()
        if row is None:
            raise NotFound(f"no turn with id {turn_id}; `memchat memory search` or `list` shows the ids")
        try:
            check_pinnable(row.role)
        except BadInput as exc:
            raise BadInput(f"turn {turn_id}: {exc}") from None
        add_pins(conn, [(turn_id, round(time.time(), 6))])  # to the microsecond, as an export writes it
    return memory.get(turn_id)


def unpin(memory, turn_id: int) -> None:
    """Stop keeping a turn for every chat; the turn itself stays (forget it to erase it)."""
    with memory._lock.exclusive("unpinning a memory"), storage_failures_named(memory.data_dir), \
            memory.engine.begin() as conn:
        if conn.execute(delete(pins).where(pins.c.turn_id == turn_id)).rowcount:
            return
        known = conn.execute(select(turns.c.id).where(turns.c.id == turn_id)).first() is not None
    raise NotFound(f"turn {turn_id} is not pinned; `memchat memory pins` lists the standing memories" if known
                   else f"no turn with id {turn_id}; `memchat memory pins` lists the standing memories")


def pinned_turns(memory, turn_from_row) -> list:
    """Every standing memory, newest pin first."""
    query = with_pins().where(pins.c.pinned_at.is_not(None)).order_by(pins.c.pinned_at.desc(), turns.c.id.desc())
    with memory.engine.connect() as conn:
        return [turn_from_row(row) for row in conn.execute(query)]
