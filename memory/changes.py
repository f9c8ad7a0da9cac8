"""Facts that changed: which recalled statement a newer one supersedes, found without a model call.

A person who keeps memchat for years says "My phone is a Pixel 6", then months later "I sold my
phone and got an iPhone 15". Both stay stored ("which phone did I have before?" still finds the
old one), but for "which phone do I have now?" the newer is what they mean. Two statements are taken
as one fact that changed when all three hold:

- their embeddings are close (cosine >= SAME_THING): they are about one thing;
- the newer says that something changed (CHANGED: sold, moved, left, started, no longer, now, ...),
  as a person reporting a change does; two unrelated facts both still true rarely do;
- they are about the same person: the relatives or other people they name (RELATIONS) are the
  same, so "my sister lives in Bergen" and "my brother lives in Ghent" never supersede each other;
- an older statement that itself reports a change is superseded only by one sharing a word of what
  changed: two reports of change look alike by their change words alone ("I sold my car and bought
  a Tesla", "I sold my phone and got an iPhone": 0.5 apart).

Measured on the pairs in tests/test_changes.py and the answer eval's time cases (docs/answers.md);
the embeddings alone do not separate them (MiniLM puts "sister in Bergen" / "brother in Ghent" at
0.54 and "nurse at St. Mary's" / "new job at Brightwave" at 0.41).
"""
from __future__ import annotations

import re

import numpy as np

from memory.recall import content_words
from memory.turn import Hit

SAME_THING = 0.33  # the lowest cosine of a changed fact's two statements on the dev pairs was 0.34
# A change word alone, not inside a compound ("left-handed", "new-found" say no change).
CHANGED = re.compile(
    r"(?<![\w-])(now|no longer|any ?more|instead|new|moved|switched|changed|sold|bought|got rid|replaced|started|"
    r"stopped|quit|left|joined|cancell?ed|closed|retired|became|broke up|divorced|married|died|gave up)(?![\w-])",
    re.IGNORECASE)
RELATIONS = frozenset(
    "sister brother mother mum mom father dad parents son daughter child children kid kids wife husband "
    "partner boyfriend girlfriend fiance fiancee cousin aunt uncle niece nephew grandmother grandma "
    "grandfather grandpa grandparents friend neighbour neighbor boss colleague coworker roommate flatmate "
    "landlord doctor dentist teacher".split())


def _people(text: str) -> frozenset[str]:
    return frozenset(w for w in re.findall(r"[a-z]+", text.lower()) if w in RELATIONS)


def _topic(text: str) -> set[str]:
    """What a statement is about, roughly: its words that are neither function words nor change words."""
    return {w for w in content_words(text) if not CHANGED.fullmatch(w)}


def supersessions(hits: list[Hit], vectors: dict[int, np.ndarray]) -> dict[int, int]:
    """{older turn id: the id of the newer turn that supersedes it} among `hits`, whose unit vectors
    `vectors` holds by turn id (a hit without one is left alone). A change supersedes one statement,
    the older one closest to it, so "I closed my Northgate account" replaces "My bank is Northgate",
    not the mortgage mentioned beside it."""
    found: dict[int, int] = {}
    by_age = sorted((h for h in hits if h.turn.id in vectors), key=lambda h: h.turn.created_at)
    for i, new in enumerate(by_age):
        if not CHANGED.search(new.turn.text):
            continue
        people = _people(new.turn.text)
        older = [(float(vectors[old.turn.id] @ vectors[new.turn.id]), old) for old in by_age[:i]
                 if old.turn.created_at < new.turn.created_at and _people(old.turn.text) == people
                 and (not CHANGED.search(old.turn.text) or _topic(old.turn.text) & _topic(new.turn.text))]
        close = [(cosine, old) for cosine, old in older if cosine >= SAME_THING]
        if close:
            found[max(close, key=lambda pair: pair[0])[1].turn.id] = new.turn.id
    return found
