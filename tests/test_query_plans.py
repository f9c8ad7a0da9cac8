"""Recall's and a chat turn's SQL reads by index: never a scan of every turn or every vector.

A plan that scans is fast on a test's hundred turns and takes seconds at a million (an index on
embeddings.model once turned recall's window lookup into a scan: 15 -> 600 ms p50 at 1M), so the
plans themselves are checked, on a real store, for every statement those paths run."""
from __future__ import annotations

import re

from sqlalchemy import event

from memory import query_words, recall
from memory.recall import RecallFilter
from memory.timewindow import TimeWindow
from memory.turn import NewTurn

# A scan of a real table (an FTS5 virtual table's "SCAN ... VIRTUAL TABLE INDEX" is its own lookup).
FULL_SCAN = re.compile(r"\bSCAN (turns|embeddings|conversations|t|e|n|h|p)\b(?! VIRTUAL TABLE)")
# A lookup by the embedding model alone, which every vector matches: a scan in disguise.
BY_MODEL_ALONE = re.compile(r"\(model=\?\)")


def _plans(memory, work) -> list[tuple[str, str]]:
    """(statement, plan line) for every SELECT (and INSERT ... SELECT) `work` runs, each explained on its own connection
    (recall's scratch tables live there) just before it runs."""
    plans: list[tuple[str, str]] = []

    def explain(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith(("SELECT", "INSERT")) and "SELECT" in statement.upper() and not executemany:
            raw = conn.connection.driver_connection
            plans.extend((statement, row[-1]) for row in raw.execute("EXPLAIN QUERY PLAN " + statement, parameters or ()))

    event.listen(memory.engine, "before_cursor_execute", explain)
    try:
        work()
    finally:
        event.remove(memory.engine, "before_cursor_execute", explain)
    return plans


def test_recall_and_a_turn_read_by_index_only(memory, monkeypatch):
    long_text = "The spare key is under the blue flowerpot. " + " ".join(
        f"Paragraph {i} is about compost, mulch and tomato seedlings." for i in range(60))
    memory.remember_many([NewTurn(text=t, role="user" if i % 2 == 0 else "assistant", conversation_id=f"c{i // 6}")
                          for i, t in enumerate([long_text] + [f"Note {i}: my sister Anna moved to Lisbon in May."
                                                               for i in range(40)])])

    def work():
        memory.recall("Where did my sister move last week?", k=5)
        memory.recall("where is the spare key", k=5, flt=RecallFilter(conversation_id="c0"))
        memory.recall("what did Anna say", k=5, flt=RecallFilter(since=0, until=4e9))
        memory.recall("Lisbon in May", k=5, window=TimeWindow(0, 4e9, "ever"))
        memory.remember("I moved the key to the shed.", role="user", conversation_id="c1", embed_later=True)
        memory.embed_deferred()

    plans = _plans(memory, work)
    monkeypatch.setattr(query_words, "READ_DOCLIST_BELOW", 1)  # the common words' way too,
    monkeypatch.setattr(recall, "POSTINGS_BUDGET", 1)  # and the newest turns that say every word
    plans += _plans(memory, work)
    assert len({statement for statement, _ in plans}) > 10  # the listener saw the paths' statements
    scans = [(statement, line) for statement, line in plans if FULL_SCAN.search(line) or BY_MODEL_ALONE.search(line)]
    assert not scans, "\n".join(f"{line}: {statement}" for statement, line in scans)
    # Not checked: a filter on the role alone, which no index serves (half a store matches it);
    # recall counts its turns only up to the exact-search limit, then searches the index and filters.
