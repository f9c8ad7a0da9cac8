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

from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection

# A neighbour's words count at this share of the turn's own, as in the bm25 of memory/fulltext.py.
NEIGHBOUR_SHARE = 0.5
# Lexical share = (coverage / best coverage) * best coverage ** LEXICAL_CONFIDENCE: 0 would trust a
# lexical first place whatever it matched, 1 would scale by coverage alone. 0.5 is where the LoCoMo
# dev split and the project's fixture both gained (docs/recall.md).
LEXICAL_CONFIDENCE = 0.5
# memchat's own replies, for a question about the person: their share of each signal.
REPLY_SHARE = 0.6

ABOUT_THE_PERSON = re.compile(r"\b(i|me|my|mine|myself)\b", re.IGNORECASE)
# "What did you recommend…", "your advice": a question about memchat's own words.
ABOUT_THE_REPLIES = re.compile(
    r"\byou\s+(say|said|tell|told|mention|mentioned|suggest|suggested|recommend|recommended|write|wrote|give|gave"
    r"|show|showed|explain|explained|propose|proposed|answer|answered)\b"
    r"|\byour\s+(answer|reply|replies|suggestion|advice|recommendation|code|example)", re.IGNORECASE)


def lexical_factors(conn: Connection, words: list[str], stems: dict[str, str | None], ids: list[int]) -> dict[int, float]:
    """Each lexical candidate's share: the idf-weighted part of the query its own text says (a word
    only its neighbours say counts at NEIGHBOUR_SHARE), relative to the best candidate's, times the
    best candidate's part ** LEXICAL_CONFIDENCE (a query whose best match says little counts little)."""
    if not ids or not words:
        return {}
    turns = conn.exec_driver_sql("SELECT count(*) FROM turns").scalar_one()
    docs = dict(conn.execute(
        text("SELECT term, doc FROM turns_fts_vocab WHERE term IN :terms").bindparams(bindparam("terms", expanding=True)),
        {"terms": sorted({s for s in stems.values() if s})}).all())
    idf = {w: math.log((turns - docs.get(stems.get(w), 0) + 0.5) / (docs.get(stems.get(w), 0) + 0.5) + 1) for w in words}
    said = dict.fromkeys(ids, 0.0)
    query = text("SELECT rowid FROM turns_fts WHERE turns_fts MATCH :match AND rowid IN :ids").bindparams(
        bindparam("ids", expanding=True))
    for word in words:
        own = {r[0] for r in conn.execute(query, {"match": f'text : "{word}"', "ids": ids})}
        near = {r[0] for r in conn.execute(query, {"match": f'{{before after}} : "{word}"', "ids": ids})}
        for turn_id in ids:
            said[turn_id] += idf[word] * (1.0 if turn_id in own else NEIGHBOUR_SHARE if turn_id in near else 0.0)
    whole = sum(idf.values()) or 1.0
    coverage = {turn_id: value / whole for turn_id, value in said.items()}
    best = max(coverage.values())
    if best <= 0:
        return dict.fromkeys(ids, 0.0)
    return {turn_id: value / best * best ** LEXICAL_CONFIDENCE for turn_id, value in coverage.items()}


def dense_factors(dense: list[tuple[int, float]]) -> dict[int, float]:
    """Each dense candidate's share: 1 for the best cosine, 0 at the candidates' median and below.
    A paraphrase found clearly first keeps its whole share; a crowd of near-equal cosines, where the
    order is mostly noise, counts for little."""
    if len(dense) < 2:
        return {}
    cosines = sorted(score for _, score in dense)
    middle = cosines[len(cosines) // 2]
    top = cosines[-1]
    if top <= middle:
        return {}
    return {turn_id: max(0.0, (score - middle) / (top - middle)) for turn_id, score in dense}


def asks_about_the_person(query: str) -> bool:
    return bool(ABOUT_THE_PERSON.search(query)) and not ABOUT_THE_REPLIES.search(query)


def person_factors(conn: Connection, query: str, ids: list[int]) -> dict[int, float]:
    """REPLY_SHARE for memchat's own replies among `ids` when the query asks about the person."""
    if not ids or not asks_about_the_person(query):
        return {}
    replies = conn.execute(text("SELECT id FROM turns WHERE role = 'assistant' AND id IN :ids").bindparams(
        bindparam("ids", expanding=True)), {"ids": ids}).scalars()
    return dict.fromkeys(replies, REPLY_SHARE)
