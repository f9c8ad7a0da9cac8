"""The time a question names ("last week", "in May", "since last monday") as a window of UTC epoch
seconds, in the person's time zone.

dateparser finds the phrase and the moment it means; the window's width comes from what the phrase
named (a day, a week, a month, a year). dateparser knows no seasons and no weekends, so those two
units are read here from their own words. dateparser is slow to import and ~5 ms a call, so it is
imported lazily and only run on text that holds a word able to name a time (`_may_name_time`).
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from functools import lru_cache

from memory.errors import BadInput

# Every English expression dateparser resolves against "now" names a unit, a weekday, a month, a
# deictic word or a year: a text without one of these words cannot name a time, and skipping the
# parser for it keeps recall's cost at a set lookup for most messages (docs/recall.md).
_MONTHS = "january february march april may june july august september october november december"
_MONTH_WORDS = frozenset((_MONTHS + " jan feb mar apr jun jul aug sep sept oct nov dec").split())
_TIME_WORDS = _MONTH_WORDS | frozenset((
    "monday tuesday wednesday thursday friday saturday sunday mon tue tues wed thu thur thurs fri sat sun "
    "yesterday today tonight tomorrow ago since day days week weeks weekend weekends fortnight month months "
    "year years summer winter spring autumn fall morning afternoon evening night hour hours minute minutes"
).split())
_WORD = re.compile(r"[a-z]+|(?<!\d)(?:19|20)\d\d(?!\d)")
# What dateparser takes for a date that, alone, is almost always another word ("we" is read as
# Wednesday, "may" as the month, "now" is the present, not a window of the past).
_AMBIGUOUS = frozenset("we now may sat sun mar wed second march fall".split())
_SEASON_MONTHS = {"spring": 3, "summer": 6, "autumn": 9, "fall": 9, "winter": 12}  # first month, northern
_UNIT = re.compile(r"\b(?:(last|this|past|previous|next)\s+|(?:over|during|in|on|at)\s+the\s+)"
                   r"(summer|winter|spring|autumn|fall|weekend)\b", re.IGNORECASE)
_LOOSE_WORDS = re.compile(r"^(?:(?:in|on|at|of)\s+)+(?=(?:in|on|at|of)\s)|\s+(?:in|on|at|of)$", re.IGNORECASE)
_SINCE = re.compile(r"\bsince\s+$", re.IGNORECASE)
_DAY_NUMBER = re.compile(r"\b\d{1,2}(?:st|nd|rd|th)?\b")
_YEAR = re.compile(r"(?:19|20)\d\d")


@dataclass(frozen=True)
class TimeWindow:
    """Half-open [start, end) in UTC epoch seconds; `phrase` is the words that named it, as typed."""

    start: float
    end: float
    phrase: str

    def __contains__(self, moment: float) -> bool:
        return self.start <= moment < self.end

    def label(self, tz: tzinfo) -> str:
        """What the person sees: "on Fri 27 Nov", "from Mon 23 to Sun 29 Nov", "in May 2026"."""
        first = datetime.fromtimestamp(self.start, tz)
        last = datetime.fromtimestamp(self.end, tz) - timedelta(microseconds=1)
        if first.date() == last.date():
            return f"on {_day(first, with_month=True, with_year=first.year != datetime.now(tz).year)}"
        after = datetime.fromtimestamp(self.end, tz)
        if first.day == after.day == 1 and first.time() == after.time() == datetime.min.time():
            months = after.year * 12 + after.month - first.year * 12 - first.month
            if months == 1:
                return f"in {first:%B %Y}"
            if months == 12 and first.month == 1:
                return f"in {first.year}"
        years = first.year != last.year or first.year != datetime.now(tz).year
        return (f"from {_day(first, with_month=first.month != last.month or years, with_year=years)}"
                f" to {_day(last, with_month=True, with_year=years)}")


def _day(moment: datetime, with_month: bool, with_year: bool) -> str:
    text = f"{moment:%a} {moment.day}"
    if with_month:
        text += f" {moment:%b}"
    return text + (f" {moment.year}" if with_year else "")


def _may_name_time(text: str) -> bool:
    return any(w in _TIME_WORDS or w[0].isdigit() for w in _WORD.findall(text.lower()))


@lru_cache(maxsize=1)
def _search():
    """dateparser's search, English only (its language detection is most of its cost)."""
    from dateparser.search import search_dates

    return search_dates


def warm_up() -> None:
    """Import dateparser and run it once (its first call builds its tables: ~0.7 s), off the first message."""
    parse_window("what did we say yesterday", time.time(), timezone.utc)


def parse_window(text: str, now: float, tz: tzinfo) -> TimeWindow | None:
    """The time `text` names, or None when it names none."""
    if not _may_name_time(text):
        return None
    return _parse(text, _local(now, tz).replace(second=0, microsecond=0), tz)


@lru_cache(maxsize=256)  # recall and the faces parse the same message; the minute keeps "now" fresh
def _parse(text: str, now: datetime, tz: tzinfo) -> TimeWindow | None:
    unit = _UNIT.search(text)
    if unit:
        return _unit_window(text, unit, now, tz)
    settings = {"RELATIVE_BASE": now.replace(tzinfo=None), "PREFER_DATES_FROM": "past",
                "RETURN_AS_TIMEZONE_AWARE": False}
    for found, moment in _search()(text, languages=["en"], settings=settings) or []:
        phrase = _LOOSE_WORDS.sub("", found)  # "in on 31 July" and "last year in" take a word too many
        if phrase.lower() in _AMBIGUOUS:
            continue
        start, end = _widen(phrase, moment.replace(tzinfo=tz), tz)
        at = text.find(phrase)
        since = _SINCE.search(text[:at]) if at >= 0 else None
        if since:  # "since last monday": from then to the end of today
            phrase = text[since.start():at + len(phrase)]
            end = _midnight(now.date() + timedelta(days=1), tz)
        return TimeWindow(start.timestamp(), end.timestamp(), phrase.strip())
    return None


def _widen(phrase: str, moment: datetime, tz: tzinfo) -> tuple[datetime, datetime]:
    """The window a found moment stands for, as wide as the unit the phrase named."""
    words = set(re.findall(r"[a-z]+", phrase.lower()))
    day = moment.date()
    if words & {"week", "weeks", "fortnight"}:
        monday = day - timedelta(days=day.weekday())
        return _midnight(monday, tz), _midnight(monday + timedelta(days=7), tz)
    if words & {"month", "months"} or (words & _MONTH_WORDS and not _DAY_NUMBER.search(_YEAR.sub("", phrase))):
        first = day.replace(day=1)
        return _midnight(first, tz), _midnight(_add_months(first, 1), tz)
    if words & {"year", "years"} or _YEAR.fullmatch(re.sub(r"^(in|of|during)\s+", "", phrase.strip().lower())):
        return _midnight(date(day.year, 1, 1), tz), _midnight(date(day.year + 1, 1, 1), tz)
    return _midnight(day, tz), _midnight(day + timedelta(days=1), tz)


def _unit_window(text: str, unit: re.Match, now: datetime, tz: tzinfo) -> TimeWindow:
    """A season (meteorological, northern hemisphere) or a weekend: "last summer", "over the weekend"."""
    which, name = (unit.group(1) or "the").lower(), unit.group(2).lower()
    today = now.date()
    if name == "weekend":
        saturday = today - timedelta(days=(today.weekday() - 5) % 7)  # this or the latest Saturday
        if which == "next":
            saturday = today + timedelta(days=(5 - today.weekday()) % 7 or 7)
        elif which in ("last", "past", "previous") and saturday + timedelta(days=2) > today:
            saturday -= timedelta(days=7)  # a weekend not over yet is not "last"
        first, after = saturday, saturday + timedelta(days=2)
    else:
        first = date(today.year, _SEASON_MONTHS[name], 1)
        while first > today:  # the latest season of that name begun by today
            first = _add_months(first, -12)
        after = _add_months(first, 3)
        if which == "next":
            first, after = _add_months(first, 12), _add_months(after, 12)
        elif which in ("last", "past", "previous") and after > today:
            first, after = _add_months(first, -12), _add_months(after, -12)
    return TimeWindow(_midnight(first, tz).timestamp(), _midnight(after, tz).timestamp(), unit.group().strip())


def strip_phrase(text: str, window: TimeWindow | None) -> str:
    """`text` without the words that named `window`, for the lexical query."""
    if window is None or not window.phrase:
        return text
    left = re.sub(r"\s{2,}", " ", text.replace(window.phrase, " "))
    return re.sub(r"\s+([?.!,;])", r"\1", left).strip(" ,")


def parse_bound(value: str, now: float, tz: tzinfo, end: bool) -> float:
    """What --since / --until take: ISO 8601 (without an offset, in the person's time zone) or a time
    in words; in words, --until means up to the end of what was named (`end`), --since its start."""
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        window = parse_window(value, now, tz)
        if window is None:
            flag = "--until" if end else "--since"
            raise BadInput(f"{flag} {value!r} is not a time: use ISO 8601 (2026-05-01, 2026-05-01T09:30) "
                           "or words (yesterday, last monday, 2 weeks ago)") from None
        return window.end if end else window.start
    return (moment if moment.tzinfo else moment.replace(tzinfo=tz)).timestamp()


def _local(epoch: float, tz: tzinfo) -> datetime:
    return datetime.fromtimestamp(epoch, tz)


def _midnight(day: date, tz: tzinfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=tz)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)
