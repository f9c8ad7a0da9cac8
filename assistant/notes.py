"""The recalled notes as the model reads them: one line each, dated when the question is about time,
and a statement a newer one superseded (memory/changes.py) marked earlier, before the newer.

Dates: "9 days ago (Sun 22 Nov): ..." reads against "today" or "yesterday" inside the note; which
form, and that only questions about time get dates, was chosen by `memchat eval answers` with the
time cases (docs/answers.md).
"""
from __future__ import annotations

import re
from datetime import datetime, tzinfo

from memory.turn import Hit

# Words by which a question asks about time without naming a window (naming one is for
# memory/timewindow.py to find): when something happened, how long ago, since, and what holds now.
# "When is my mother's birthday?" asks for a date the note itself states: dating the notes for it
# cost answers (docs/answers.md), so only a "when" in the past counts.
_PAST_WHEN = r"when (?:did|was|were|have|has|had)|how long ago|what date did|which day did|what day did"
ASKS_ABOUT_TIME = re.compile(
    rf"\b({_PAST_WHEN}|ago|since|now|currently|these days|any ?more|still|latest|recent(?:ly)?|before|"
    r"used to|previous(?:ly)?|earlier|at first|originally|"
    r"how many (?:days|weeks|months|years))\b", re.IGNORECASE)
ASKS_ABOUT_NOW = re.compile(r"\b(now|currently|these days|any ?more|still|at the moment|at present|today)\b",
                            re.IGNORECASE)


ASKS_WHEN = re.compile(rf"\b({_PAST_WHEN}|how many (?:days|weeks|months|years) ago)\b", re.IGNORECASE)


# Words by which a note names a time relative to when it was said ("we planted it today"): such a
# note answers "when?" only read against its own date.
RELATIVE_TIME = re.compile(
    r"\b(today|yesterday|tonight|tomorrow|ago|recently|just now|(?:this|last) (?:morning|afternoon|evening|"
    r"night|week|weekend|month|year))\b", re.IGNORECASE)


def says_relative_time(text: str) -> bool:
    return RELATIVE_TIME.search(text) is not None


def asks_about_time(question: str) -> bool:
    return ASKS_ABOUT_TIME.search(question) is not None


def asks_when(question: str) -> bool:
    """The question asks for a time ("when did we plant the apple tree?"), not what held at one."""
    return ASKS_WHEN.search(question) is not None


def asks_about_now(question: str) -> bool:
    """The question asks what holds at present ("which phone do I have now?"): a superseded statement
    is left out of its notes."""
    return ASKS_ABOUT_NOW.search(question) is not None


def said_when(created_at: float, now: float, tz: tzinfo) -> str:
    """When a note was said, in the person's time zone: "9 days ago (Sun 22 Nov)"."""
    said, today = datetime.fromtimestamp(created_at, tz), datetime.fromtimestamp(now, tz)
    days = (today.date() - said.date()).days
    if days <= 0:
        ago = "today"
    elif days == 1:
        ago = "yesterday"
    elif days < 14:
        ago = f"{days} days ago"
    elif days < 60:
        ago = f"{round(days / 7)} weeks ago"
    elif days < 730:
        ago = f"{round(days / 30.44)} months ago"
    else:
        ago = f"{round(days / 365.25)} years ago"
    date = f"{said:%a} {said.day} {said:%b}" + ("" if said.year == today.year else f" {said.year}")
    return f"{ago} ({date})"


def format_note(hit: Hit, now: float | None = None, tz: tzinfo | None = None, earlier: bool = False) -> str:
    """One note: the turn's text on one line (newlines and runs of spaces collapsed), after when it
    was said if `now` is given; `earlier`: a newer note supersedes it."""
    text = re.sub(r"\s+", " ", hit.turn.text).strip()
    when = said_when(hit.turn.created_at, now, tz) if now is not None else ""
    mark = ", ".join(part for part in ("earlier" if earlier else "", when) if part)
    return f"- {mark}: {text}" if mark else f"- {text}"


def newest_nearest(notes: list[Hit], superseded: dict[int, int]) -> list[Hit]:
    """The notes in prompt order (the best last), with each pair of an older and a newer statement
    of one fact put together, older first, where the better ranked of the two was: the newer is the
    nearer the question."""
    order = list(notes)
    for old_id, new_id in superseded.items():
        ids = [h.turn.id for h in order]
        if old_id not in ids or new_id not in ids:
            continue
        at = max(ids.index(old_id), ids.index(new_id))
        old, new = order[ids.index(old_id)], order[ids.index(new_id)]
        rest = [h for h in order if h is not old and h is not new]
        at -= 1  # its place in `rest`, two notes shorter, before the pair goes back in
        order = rest[:at] + [old, new] + rest[at:]
    return order


def in_place_of_older(ranked: list[Hit], superseded: dict[int, int]) -> list[Hit]:
    """For a question about now: each superseded statement left out, and the newer statement that
    replaced it ranked where the older was (it answers what the older matched)."""
    by_id = {h.turn.id: h for h in ranked}
    order: list[Hit] = []
    for hit in ranked:
        newer = by_id.get(superseded.get(hit.turn.id))
        if newer is not None:
            hit = newer
        elif hit.turn.id in superseded:
            continue  # the older statement, its newer one not among these: left out all the same
        if hit not in order:
            order.append(hit)
    return order
