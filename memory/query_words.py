"""A query's words against the full-text index: in how many turns' rows each is, and which of
recall's candidates say it, in their own text or only in a neighbour's (memory/fulltext.py).

Both questions have a slow answer FTS5 offers directly: bm25's idf and fts5vocab's 'doc' count
every posting of a word, ~0.5 s and 5-15 ms for a common word at a million memories. The answers
here read a bounded part of the index instead (docs/benchmarks.md, "A million memories").
"""
from __future__ import annotations

import re

from sqlalchemy.engine import Connection

from memory.record import in_list, words_list

# Up to this many rows a word's count is exact; past it, estimated (rows_holding).
COUNTED_EXACTLY = 5_000
# A word in fewer rows than this is found among the candidates by reading its doclist; a commoner
# one by tokenizing the candidates' rows afresh (who_says).
READ_DOCLIST_BELOW = 3_000
ONE_TOKEN = re.compile(r"[^\W_]+")  # what the index's unicode61 tokenizer keeps as one token
STEMS: dict[str, str | None] = {}  # word -> stem, for the process: the tokenizer never changes


def phrase(word: str) -> str:
    """An FTS5 string for `word`: quoted, so no FTS syntax leaks."""
    return '"' + word.replace('"', '""') + '"'


def stem(conn: Connection, word: str) -> str | None:
    """The term FTS5 indexes for `word` (porter stem), via a scratch FTS5 table with the same
    tokenizer (record.SCRATCH_DDL; contentless, so 'delete-all' leaves nothing of the word)."""
    if word in STEMS:  # None too: a word that makes no token. Of several tokens, the first in order: a flag, not a stem
        return STEMS[word]
    try:
        conn.exec_driver_sql("INSERT INTO temp.stemmer(rowid, w) VALUES (1, :w)", {"w": word})
        term = conn.exec_driver_sql("SELECT term FROM temp.stemmer_vocab LIMIT 1").scalar()
    finally:
        conn.exec_driver_sql("INSERT INTO temp.stemmer(stemmer) VALUES ('delete-all')")
    if len(STEMS) < 100_000:
        STEMS[word] = term
    return term


def rows_holding(conn: Connection, words: list[str]) -> dict[str, int]:
    """How many turns' rows hold each word (in any column, stemmed as the index is): exact up to
    COUNTED_EXACTLY, estimated past it from how far through the ids that many matches reach.

    Kept with the connection while the full-text index holds the same rows: a chat recalls with
    the same words again and again. The key is the ids' bounds, the forget generation and FTS5's
    totals record (its row and token counts: any row added, even under a freed id, changes it)."""
    # Separate subqueries: SQLite answers min() or max() from an index only when it stands alone.
    state = tuple(conn.exec_driver_sql(
        "SELECT (SELECT min(id) FROM turns), (SELECT max(id) FROM turns), "
        "(SELECT value FROM meta WHERE key = 'index_generation'), "
        "(SELECT block FROM turns_fts_data WHERE id = 1)").one())
    cached = conn.info.get("word_counts")
    if cached is None or cached[0] != state:
        cached = conn.info["word_counts"] = (state, {})
    counts, highest = cached[1], state[1]
    for word in words:
        if word in counts:
            continue
        found, first, last = conn.exec_driver_sql(
            "SELECT count(*), min(rowid), max(rowid) FROM (SELECT rowid FROM turns_fts WHERE turns_fts MATCH :match "
            "ORDER BY rowid LIMIT :cap)", {"match": phrase(word), "cap": COUNTED_EXACTLY + 1}).one()
        if found > COUNTED_EXACTLY:  # as dense in the later ids as from its first match on
            found = round(found * (highest - first + 1) / (last - first + 1))
        if len(counts) >= 10_000:  # a bound on what a long-lived connection keeps
            counts.clear()
        counts[word] = found
    return {word: counts[word] for word in words}


def who_says(conn: Connection, turn_ids: list[int], words: dict[str, tuple[str | None, int]]) -> dict[int, dict[str, bool]]:
    """For each of `turn_ids`, which of `words` its row holds: True where its own text says the
    word, False where only a neighbour's does. `words`: {word: (its stem as the index has it, how
    many rows hold it)}.

    A rare word's doclist is read whole, twice (any column, then the turn's own). Looking a common
    word's candidates up in its doclist costs ~50 us a turn, so for those the candidates' rows are
    tokenized afresh in a scratch table (record.SCRATCH_DDL) with the index's tokenizer. A word the
    tokenizer splits ("foo_bar") is a phrase: always read from its doclist."""
    said: dict[int, dict[str, bool]] = {}
    common: dict[str, list[str]] = {}
    for word, (stem, holding) in words.items():
        if not holding:
            continue
        if holding >= READ_DOCLIST_BELOW and stem and ONE_TOKEN.fullmatch(word):
            common.setdefault(stem, []).append(word)  # "hiking" and "hikes": one stem, both credited
            continue
        for match, own in ((phrase(word), False), ("text : " + phrase(word), True)):
            for (turn_id,) in conn.exec_driver_sql(f"SELECT rowid FROM turns_fts WHERE turns_fts MATCH :match "
                                                   f"AND +rowid IN {in_list(turn_ids)}", {"match": match}):
                said.setdefault(turn_id, {})[word] = own
    if common and turn_ids:
        for turn_id, stem, column in _tokenized(conn, turn_ids, list(common)):
            held = said.setdefault(turn_id, {})
            for word in common[stem]:
                held[word] = held.get(word, False) or column == "text"
    return said


def _tokenized(conn: Connection, turn_ids: list[int], stems: list[str]) -> list[tuple[int, str, str]]:
    """(turn id, stem, column) for each occurrence of `stems` in these turns' rows. The scratch
    table is contentless, and 'delete-all' leaves no token of the text in it."""
    stems_sql, params = words_list(sorted(set(stems)))
    try:
        conn.exec_driver_sql("INSERT INTO temp.said(rowid, text, before, after) SELECT id, text, before, after "
                             f"FROM turns_in_context WHERE id IN {in_list(turn_ids)}")
        return conn.exec_driver_sql(f"SELECT doc, term, col FROM temp.said_terms WHERE term IN {stems_sql}",
                                    params).all()
    finally:
        conn.exec_driver_sql("INSERT INTO temp.said(said) VALUES ('delete-all')")
