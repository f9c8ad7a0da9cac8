"""Hybrid recall: dense candidates (vector index) and lexical candidates (FTS5 bm25), fused.

Fusion is weighted reciprocal rank fusion: each signal contributes weight / (RRF_K + rank). Ranks,
not raw scores, are fused because cosine similarities and bm25 values live on unrelated scales.
An optional recency signal ranks the candidates by age and joins the fusion with its own weight;
the context signal adds the neighbouring turns of the strongest hits. Where several signals are
fused, each candidate's share of a signal is scaled by how confident that signal is about it for
this query (memory/confidence.py). `hybrid_recall` runs it all.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
from sqlalchemy.engine import Connection

from memory import confidence, query_words
from memory.dense_scores import exact_scores, mean_over_windows
from memory.errors import BadInput
from memory.fulltext import NEIGHBOUR_WEIGHT
from memory.record import in_list
from memory.timewindow import TimeWindow, strip_phrase

# A smaller constant than the customary 60 lets a signal's top ranks count for more. Measured on
# the LoCoMo dev split; the neighbourhood is flat (see docs/recall.md). The signals' weights are
# RecallWeights'; each candidate's share of a signal is scaled by memory/confidence.py.
RRF_K = 20
CANDIDATES = 50  # per signal, before fusion
# A turn's own words count fully, its neighbours' words at NEIGHBOUR_WEIGHT (memory/fulltext.py).
BM25 = f"bm25(turns_fts, 1.0, {NEIGHBOUR_WEIGHT}, {NEIGHBOUR_WEIGHT})"
# Most postings (turn, word) pairs one lexical query may rank; see affordable_words.
POSTINGS_BUDGET = 5_000  # 2 ms lexical p50 at 100k memories (20k postings: 9 ms); docs/benchmarks.md
# Past this many matching turns a filtered dense search uses the index and filters afterwards;
# below it, it scores the matching turns' stored vectors exactly (fast, and never misses).
EXACT_FILTER_LIMIT = 50_000

# Function words carry no topic; dropping them keeps bm25 from matching every turn on "the".
STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just
    me more most my myself no nor not now of off on once only or other our ours ourselves out over
    own same she should so some such than that the their theirs them themselves then there these
    they this those through to too under until up very was we were what when where which while who
    whom why will with would you your yours yourself yourselves""".split()
)


MAX_K = 1_000  # hits one recall may return: past that it is a listing, and `memory list` or export serves it


def check_k(k) -> int:
    """k as recall takes it: a whole number from 1 to MAX_K (a negative one once sliced off all but a few)."""
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise BadInput(f"k must be a whole number from 1 to {MAX_K}, not {k!r}")
    return k


@dataclass
class RecallFilter:
    conversation_id: str | None = None
    role: str | None = None
    since: float | None = None  # epoch seconds, inclusive
    until: float | None = None  # epoch seconds, exclusive
    exclude_ids: frozenset[int] = field(default_factory=frozenset)
    include_failed: bool = False  # replies that failed are on record, but are not memories

    def sql(self, with_status: bool = True) -> tuple[str, dict]:
        """A WHERE fragment over table alias `t` (without the exclusions) and its parameters."""
        clauses, params = [], {}
        if with_status and not self.include_failed:
            clauses.append("t.status != 'failed'")
        if self.conversation_id is not None:
            clauses.append("t.conversation_id = :f_cid")
            params["f_cid"] = self.conversation_id
        if self.role is not None:
            clauses.append("t.role = :f_role")
            params["f_role"] = self.role
        if self.since is not None:
            clauses.append("t.created_at >= :f_since")
            params["f_since"] = self.since
        if self.until is not None:
            clauses.append("t.created_at < :f_until")
            params["f_until"] = self.until
        return " AND ".join(clauses), params


@dataclass
class RecallWeights:
    dense: float = 0.7  # 0.5 before the confidence factors; 0.7 chosen on the dev parts (docs/recall.md)
    lexical: float = 1.0
    recency: float = 0.0
    context: float = 0.3  # neighbours of strong hits (docs/recall.md)

    def fused(self) -> bool:
        """More than one signal: their candidates are weighed by confidence (a lone signal ranks as it is)."""
        return sum(1 for w in (self.dense, self.lexical, self.recency, self.context) if w) > 1

    @classmethod
    def only(cls, signal: str) -> "RecallWeights":
        """One retriever alone ('dense' or 'lexical'), for comparisons."""
        return cls(dense=float(signal == "dense"), lexical=float(signal == "lexical"), recency=0.0, context=0.0)


def content_words(query: str) -> list[str]:
    words = [w for w in re.findall(r"\w+", query.lower()) if w not in STOPWORDS]
    return list(dict.fromkeys(words))  # keep order, drop repeats


def fts_query(words: list[str]) -> str | None:
    """An FTS5 MATCH expression: the words OR-ed, each quoted (no FTS syntax leaks)."""
    return " OR ".join(query_words.phrase(w) for w in words) if words else None


def affordable_words(conn: Connection, words: list[str], budget: int | None = None) -> tuple[list[str], int]:
    """The rarest words whose postings add up to at most `budget` (the rarest is always kept), and
    their postings: over the budget when even the rarest word alone is.

    bm25 scores every turn that matches any query word, so one very common word makes a query
    slow in a large store while adding almost nothing to the ranking (its IDF is near zero).
    Counts come from the index itself (query_words.rows_holding), stemmed as it stems.
    """
    if not words:
        return words, 0
    budget = POSTINGS_BUDGET if budget is None else budget
    counts = query_words.rows_holding(conn, words)
    ranked = sorted(words, key=lambda w: counts[w])
    chosen, spent = [], 0
    for word in ranked:
        cost = counts[word]
        if chosen and spent + cost > budget:
            break
        chosen.append(word)
        spent += cost
    return chosen, spent


def lexical_candidates(conn: Connection, query: str, n: int, flt: RecallFilter) -> list[int]:
    words = content_words(query)
    chosen, postings = affordable_words(conn, words)
    newest = postings > POSTINGS_BUDGET
    if newest:
        # Even the rarest word is in too many turns to rank them all (bm25 over every match took
        # ~90 ms at a million memories): take the newest turns that say every word instead. FTS5
        # walks the doclists backwards by rowid and stops at the limit; no turn is scored. Only a
        # turn's own words count here: unscored, a neighbour's would rank as high as its own.
        match = " AND ".join("text : " + query_words.phrase(w) for w in words)
        score, order = "-turns_fts.rowid", "turns_fts.rowid DESC"  # the ORDER BY FTS5 serves as it reads
    else:
        match = fts_query(chosen)
        score, order = BM25, BM25
    if match is None:
        return []
    where, params = flt.sql()
    narrowing, _ = flt.sql(with_status=False)
    limit = n + len(flt.exclude_ids)
    if narrowing:  # rank only the turns that pass the filters
        sql = ("SELECT t.id FROM turns_fts JOIN turns t ON t.id = turns_fts.rowid "
               f"WHERE turns_fts MATCH :match AND {where} ORDER BY {order} LIMIT :n")
    else:
        # Rank inside FTS5 first, then drop failed replies: joining before ranking makes SQLite
        # look up every matching turn, which was 2x slower at 100k memories.
        sql = (f"SELECT t.id FROM (SELECT rowid, {score} AS score FROM turns_fts WHERE turns_fts MATCH :match "
               f"ORDER BY {'score' if not newest else order} LIMIT :n) AS ranked JOIN turns t ON t.id = ranked.rowid "
               f"WHERE {where or '1'} ORDER BY ranked.score")
        limit += n  # room for failed replies dropped after ranking
    rows = conn.exec_driver_sql(sql, {"match": match, "n": limit, **params}).all()  # all(): one fetch, not one a row
    return [r[0] for r in rows if r[0] not in flt.exclude_ids][:n]


def dense_candidates(conn: Connection, store, qvec: np.ndarray, n: int, flt: RecallFilter) -> list[tuple[int, float]]:
    """(turn id, cosine) best first. A long turn, embedded as several windows, scores the mean of
    its windows' cosines (`mean_over_windows`); the index finds it by its best window."""
    where, params = flt.sql()
    narrowing, _ = flt.sql(with_status=False)  # failed replies are few: no reason to leave the index
    if narrowing:
        # Counted only as far as the limit: past it the count does not matter (a role alone matches half a store).
        matching = conn.exec_driver_sql(f"SELECT count(*) FROM (SELECT 1 FROM turns t WHERE {where} LIMIT :f_limit)",
                                        {**params, "f_limit": EXACT_FILTER_LIMIT + 1}).scalar_one()
        if matching <= EXACT_FILTER_LIMIT:
            return exact_scores(conn, qvec, n, where, params, flt.exclude_ids)
    oversample = n * (10 if narrowing else 2) + len(flt.exclude_ids)
    ids, scores = store.search(qvec, oversample)
    if len(ids) == 0:
        return []
    rescore = store.approximate  # compressed vectors' scores: the float32 copy in SQLite gives the exact ones
    # A window past the first, or a first that stops short of the text, marks a long turn: only
    # those need their other windows read (asking SQLite which turns have several cost 0.6 ms a
    # recall at 100k memories, for none among short chat turns).
    rows = conn.exec_driver_sql(
        f"SELECT e.id, e.turn_id, e.model, e.chunk > 0 OR e.\"end\" < length(t.text){', e.vector' if rescore else ''} "
        f"FROM embeddings e JOIN turns t ON t.id = e.turn_id WHERE e.id IN {in_list(ids)}"
        + (f" AND {where}" if where else ""), params).all()
    owner = {row[0]: (row[1], row[2]) for row in rows}
    long_turns = {row[1] for row in rows if row[3]}
    if rescore:
        exact = {row[0]: float(np.frombuffer(row[4], dtype=np.float32) @ qvec) for row in rows}
        ids = np.array(sorted(exact, key=lambda vid: -exact[vid]), dtype=np.int64)
        scores = np.array([exact[vid] for vid in ids.tolist()], dtype=np.float32)
    best: dict[int, float] = {}
    for vid, score in zip(ids.tolist(), scores.tolist()):
        turn_id = owner.get(vid, (None,))[0]
        if turn_id is not None and turn_id not in flt.exclude_ids and turn_id not in best:
            best[turn_id] = score
    if long_hits := [t for t in best if t in long_turns]:  # the index holds one model's vectors: any hit names it
        best.update(mean_over_windows(conn, qvec, long_hits, next(iter(owner.values()))[1]))
    return sorted(best.items(), key=lambda item: -item[1])[:n]


CONTEXT_SOURCES = 20  # fused hits whose neighbouring turns join the context signal


def context_ranking(conn: Connection, ranked: list[int], flt: RecallFilter) -> list[int]:
    """The previous and next turn of each hit in its conversation, in the order of the hits."""
    if not ranked:
        return []
    where, params = flt.sql()
    rows = conn.exec_driver_sql(
        "SELECT h.id, "
        "(SELECT max(n.id) FROM turns n WHERE n.conversation_id = h.conversation_id AND n.id < h.id), "
        "(SELECT min(n.id) FROM turns n WHERE n.conversation_id = h.conversation_id AND n.id > h.id) "
        f"FROM turns h WHERE h.id IN {in_list(ranked)}").all()
    neighbours = {r[0]: [i for i in r[1:] if i is not None] for r in rows}
    ordered = list(dict.fromkeys(n for hit in ranked for n in neighbours.get(hit, []) if n not in flt.exclude_ids))
    if where and ordered:  # neighbours must pass the same filters as hits
        allowed = set(conn.exec_driver_sql(f"SELECT t.id FROM turns t WHERE t.id IN {in_list(ordered)} AND {where}",
                                           params).scalars())
        ordered = [i for i in ordered if i in allowed]
    return ordered


def recency_ranking(conn: Connection, candidates: set[int]) -> list[int]:
    return [r[0] for r in conn.exec_driver_sql(f"SELECT id FROM turns WHERE id IN {in_list(candidates)} "
                                                "ORDER BY created_at DESC").all()]


def fuse(rankings: dict[str, list[int]], weights: dict[str, float],
         factors: dict[str, dict[int, float]] | None = None) -> list[tuple[int, float, dict[str, int]]]:
    """Weighted reciprocal rank fusion: (turn id, fused score, {signal: rank}) best first.
    `factors[signal][turn]` scales one turn's share of a signal (1 where absent)."""
    scores: dict[int, float] = {}
    signals: dict[int, dict[str, int]] = {}
    factors = factors or {}
    for name, ranking in rankings.items():
        weight = weights.get(name, 0.0)
        scale = factors.get(name, {})
        for rank, turn_id in enumerate(ranking, start=1):
            signals.setdefault(turn_id, {})[name] = rank
            if weight:
                scores[turn_id] = scores.get(turn_id, 0.0) + weight * scale.get(turn_id, 1.0) / (RRF_K + rank)
    ordered = sorted(scores.items(), key=lambda item: (-item[1], -item[0]))
    return [(turn_id, score, signals[turn_id]) for turn_id, score in ordered]


@dataclass
class Ranked:
    """One recalled turn before its row is fetched: fused score, rank per signal, cosine if dense found it."""

    turn_id: int
    score: float
    signals: dict[str, int]
    similarity: float | None


def _candidates(conn: Connection, store, vector: np.ndarray | None, query: str, n: int, flt: RecallFilter,
                weights: RecallWeights) -> tuple[dict[str, list[int]], dict[int, float]]:
    """Each retriever's candidates, best first, and the dense cosines."""
    rankings: dict[str, list[int]] = {}
    similarity: dict[int, float] = {}
    if vector is not None:
        dense = dense_candidates(conn, store, vector, n, flt)
        rankings["dense"] = [turn_id for turn_id, _ in dense]
        similarity = dict(dense)
    if weights.lexical:
        rankings["lexical"] = lexical_candidates(conn, query, n, flt)
    return rankings, similarity


def signal_factors(conn: Connection, query: str, rankings: dict[str, list[int]],
                   similarity: dict[int, float]) -> dict[str, dict[int, float]]:
    """How much each candidate counts in each signal for this query (memory/confidence.py)."""
    factors: dict[str, dict[int, float]] = {}
    if rankings.get("lexical"):
        words = content_words(query)
        factors["lexical"] = confidence.lexical_factors(conn, words, {w: query_words.stem(conn, w) for w in words},
                                                        rankings["lexical"])
    if rankings.get("dense"):
        factors["dense"] = confidence.dense_factors([(i, similarity[i]) for i in rankings["dense"]])
    person = confidence.person_factors(conn, query, list(set().union(*rankings.values())))
    for name in rankings:
        scale = factors.setdefault(name, {})
        for turn_id, share in person.items():
            scale[turn_id] = scale.get(turn_id, 1.0) * share
    return factors


def hybrid_recall(conn: Connection, store, encode_query: Callable[[str], np.ndarray | None], query: str, k: int,
                  flt: RecallFilter, weights: RecallWeights, window: TimeWindow | None = None) -> list[Ranked]:
    """The best k turns for `query`: each signal's candidates, fused; then the strongest hits'
    neighbours as one more signal, fused again. With a `window` (the time the query names), the
    relevant turns inside it come first (`prefer_window`), and its words are not searched for."""
    n = max(CANDIDATES, k)
    if window is not None:
        query = strip_phrase(query, window) or query  # "yesterday" alone: nothing else to search
    # store.dim is None until anything is embedded; count() would be a query per recall in a server store.
    # encode_query answers None while an embedding provider is down: recall goes on with full text.
    vector = encode_query(query) if weights.dense and store.dim is not None else None
    rankings, similarity = _candidates(conn, store, vector, query, n, flt, weights)
    if weights.recency:
        pool = set().union(*rankings.values()) if rankings else set()
        rankings["recency"] = recency_ranking(conn, pool) if pool else []
    signal_weights = {"dense": weights.dense, "lexical": weights.lexical, "recency": weights.recency,
                      "context": weights.context}
    factors = signal_factors(conn, query, rankings, similarity) if weights.fused() else {}
    fused = fuse(rankings, signal_weights, factors)
    if weights.context and fused:
        # The turns next to a strong hit: the answer to a question often sits beside the words
        # that match it ("Where did you go?" / "Lisbon!").
        rankings["context"] = context_ranking(conn, [i for i, _, _ in fused[:CONTEXT_SOURCES]], flt)
        factors["context"] = confidence.person_factors(conn, query, rankings["context"])
        fused = fuse(rankings, signal_weights, factors)
    ranked = [Ranked(i, score, signals, similarity.get(i)) for i, score, signals in fused]
    if window is not None:
        ranked = prefer_window(conn, store, vector, query, n, flt, weights, window, ranked)
    return ranked[:k]


# An in-window turn that shares no word with the query comes first only when its cosine is within
# this of the best turn's anywhere: a window that holds only other topics ("the dentist" asked
# about a week of cooking) changes nothing. In tests/test_timewindow.py the dentist note is 0.39
# above the week's other turns (0.64 against 0.25 and 0.10).
WINDOW_MARGIN = 0.2


def prefer_window(conn: Connection, store, vector: np.ndarray | None, query: str, n: int, flt: RecallFilter,
                  weights: RecallWeights, window: TimeWindow, ranked: list[Ranked]) -> list[Ranked]:
    """The relevant turns inside `window` first, fused among themselves, then the rest as ranked.

    A preference, not a filter: a wrong parse or an empty window leaves the usual hits. The window
    gets its own candidate pass (the filtered dense and lexical search of RecallFilter since/until),
    so its turns are found even when hundreds of older ones match better. signals["window"] is a
    preferred hit's rank inside the window."""
    since = window.start if flt.since is None else max(flt.since, window.start)
    until = window.end if flt.until is None else min(flt.until, window.end)
    if since >= until:
        return ranked
    rankings, similarity = _candidates(conn, store, vector, query, n, replace(flt, since=since, until=until), weights)
    fused = fuse(rankings, {"dense": weights.dense, "lexical": weights.lexical},
                 signal_factors(conn, query, rankings, similarity) if weights.fused() else {})
    if vector is not None:  # relevant: it says a word of the query, or means nearly what the best hit does
        best = max([r.similarity for r in ranked if r.similarity is not None] + list(similarity.values()),
                   default=float("inf"))  # nothing to compare with: only a turn that says a query word
        said = _saying(conn, [i for i, _, _ in fused], query)
        fused = [f for f in fused if f[0] in said or similarity.get(f[0], -1.0) >= best - WINDOW_MARGIN]
    preferred = [Ranked(i, score, {**signals, "window": rank}, similarity.get(i))
                 for rank, (i, score, signals) in enumerate(fused, start=1)]
    chosen = {r.turn_id for r in preferred}
    return preferred + [r for r in ranked if r.turn_id not in chosen]


def _saying(conn: Connection, ids: list[int], query: str) -> set[int]:
    """The turns among `ids` whose own text says a content word of `query` (a neighbour's does not count)."""
    words = content_words(query)
    if not ids or not words:
        return set()
    rows = conn.exec_driver_sql(f"SELECT rowid FROM turns_fts WHERE turns_fts MATCH :match AND rowid IN {in_list(ids)}",
                                {"match": " OR ".join("text : " + query_words.phrase(w) for w in words)})
    return {r[0] for r in rows}
