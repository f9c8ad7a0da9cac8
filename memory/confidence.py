"""How much each recall signal's candidates count for one query, on top of their ranks.

Rank fusion alone trusts every signal's first place the same. On conversations of another shape
than LoCoMo that is the weakness (docs/recall.md): a turn that says one common query word ("Ben",
"project") ranks first lexically and outranks dense's correct first place, and a long reply matches
almost any question. Three factors scale a candidate's share of a signal in `fuse`:

- lexical: how much of the query the turn says, weighted by the words' rarity (idf), relative to the
  best candidate and scaled by how much of the query even that one says (`lexical_factors`);
- dense: how far the turn's cosine stands above the middle of the candidates (`dense_factors`);
- the person: a question about the person ("what do I…", "my…") is answered by what the person
  said, so memchat's own replies count for less in every signal (`person_factors`).
"""
from __future__ import annotations

import math
import re

from sqlalchemy.engine import Connection

from memory import query_words
from memory.fulltext import NEIGHBOUR_WEIGHT
from memory.record import in_list

# Lexical share = (coverage / best coverage) * best coverage ** LEXICAL_CONFIDENCE: 0 would trust a
# lexical first place whatever it matched, 1 would scale by coverage alone. 0.5 is where the LoCoMo
# dev split and the project's fixture both gained (docs/recall.md).
LEXICAL_CONFIDENCE = 0.5
# A dense candidate at or below the median keeps this share, so it still ranks by its place.
DENSE_FLOOR = 0.05
# memchat's own replies, for a question about the person: their share of each signal.
REPLY_SHARE = 0.6

ABOUT_THE_PERSON = re.compile(r"\b(i|me|my|mine|myself)\b", re.IGNORECASE)
# Phrases with a first person that do not ask about the person: a request ("remind me where Ben
# works") or a how-to ("how do I reset the router?", answered by memchat's earlier reply).
NOT_ABOUT_THE_PERSON = re.compile(r"\b(tell|remind|show|give|help|let|teach|send)\s+me\b"
                                  r"|\bhow\s+(do|can|could|should|would)\s+i\b", re.IGNORECASE)
# "What did you recommend…", "you once told me", "your advice": a question about memchat's own words.
ABOUT_THE_REPLIES = re.compile(
    r"\byou\s+(\w+ly\s+|once\s+|already\s+|ever\s+)?(say|said|tell|told|mention|mentioned|suggest|suggested|recommend"
    r"|recommended|write|wrote|give|gave|show|showed|explain|explained|propose|proposed|answer|answered|think|thought)\b"
    r"|\byour\s+(answer|reply|replies|suggestion|advice|recommendation|code|example|take|opinion|idea)", re.IGNORECASE)


def lexical_factors(conn: Connection, words: list[str], stems: dict[str, str | None], ids: list[int]) -> dict[int, float]:
    """Each lexical candidate's share: the idf-weighted part of the query its own text says (a word
    only its neighbours say counts at NEIGHBOUR_WEIGHT, as in the bm25 of memory/fulltext.py),
    relative to the best candidate's, times the best candidate's part ** LEXICAL_CONFIDENCE (a
    query whose best match says little counts little)."""
    if not ids or not words:
        return {}
    turns = conn.exec_driver_sql("SELECT max(id) FROM turns").scalar() or 1  # near enough the count for an idf
    holding = {w: min(n, turns) if stems.get(w) else 0 for w, n in query_words.rows_holding(conn, words).items()}
    idf = {w: math.log((turns - n + 0.5) / (n + 0.5) + 1) for w, n in holding.items()}
    said = dict.fromkeys(ids, 0.0)
    # A word said nowhere is part of the query's whole, of no candidate.
    held = query_words.who_says(conn, ids, {w: (stems.get(w), holding[w]) for w in words})
    for turn_id, saying in held.items():
        for word, own in saying.items():
            said[turn_id] += idf[word] * (1.0 if own else NEIGHBOUR_WEIGHT)
    whole = sum(idf.values()) or 1.0
    coverage = {turn_id: value / whole for turn_id, value in said.items()}
    best = max(coverage.values())
    if best <= 0:
        return dict.fromkeys(ids, 0.0)
    return {turn_id: value / best * best ** LEXICAL_CONFIDENCE for turn_id, value in coverage.items()}


def dense_factors(dense: list[tuple[int, float]]) -> dict[int, float]:
    """Each dense candidate's share: 1 for the best cosine, DENSE_FLOOR at the candidates' median and
    below (still ordered by rank there, when nothing else found them).
    A paraphrase found clearly first keeps its whole share; a crowd of near-equal cosines, where the
    order is mostly noise, counts for little."""
    if len(dense) < 2:
        return {}
    cosines = sorted(score for _, score in dense)
    middle = cosines[len(cosines) // 2]
    top = cosines[-1]
    if top <= middle:
        return {}
    return {turn_id: max(DENSE_FLOOR, (score - middle) / (top - middle)) for turn_id, score in dense}


def asks_about_the_person(query: str) -> bool:
    if ABOUT_THE_REPLIES.search(query):
        return False
    return bool(ABOUT_THE_PERSON.search(NOT_ABOUT_THE_PERSON.sub(" ", query)))


def person_factors(conn: Connection, query: str, ids: list[int]) -> dict[int, float]:
    """REPLY_SHARE for memchat's own replies among `ids` when the query asks about the person."""
    if not ids or not asks_about_the_person(query):
        return {}
    replies = conn.exec_driver_sql(f"SELECT id FROM turns WHERE role = 'assistant' AND id IN {in_list(ids)}").scalars()
    return dict.fromkeys(replies, REPLY_SHARE)
