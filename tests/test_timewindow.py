"""The time a question names, as a window in the person's time zone (memory/timewindow.py), and
recall's preference for that window (memory/recall.py)."""
from __future__ import annotations

import statistics
import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from memory.errors import BadInput
from memory.recall import RecallWeights
from memory.timewindow import TimeWindow, parse_bound, parse_window, strip_phrase, warm_up

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 12, 1, 21, 0, tzinfo=BERLIN).timestamp()  # a Tuesday evening

# The table the parser was chosen on (docs/recall.md): question, label of the window it names, the
# phrase, or None where the question names no time. dateparser got all but the season and weekend
# rows, which it does not know (read by timewindow itself); parsedatetime put "in May" and "on
# Friday" in the future and read "in 2025" as 20:25.
QUESTIONS = [
    ("what did I say about the repair yesterday", "on Mon 30 Nov", "yesterday"),
    ("what did I say about the repair last week", "from Mon 23 to Sun 29 Nov", "last week"),
    ("what happened two days ago", "on Sun 29 Nov", "two days ago"),
    ("what did I buy this month", "in December 2026", "this month"),
    ("what did we do in May", "in May 2026", "in May"),
    ("who did I meet on Friday", "on Fri 27 Nov", "on Friday"),
    ("where did we go last summer", "from Mon 1 Jun to Mon 31 Aug", "last summer"),
    ("what changed since last monday", "from Mon 30 Nov to Tue 1 Dec", "since last monday"),
    ("what did I read in 2025", "in 2025", "in 2025"),
    ("what did I cook 3 weeks ago", "from Mon 9 to Sun 15 Nov", "3 weeks ago"),
    ("what did I do over the weekend", "from Sat 28 to Sun 29 Nov", "over the weekend"),
    ("what did I say on 12 March", "on Thu 12 Mar", "on 12 March"),
    ("what did I plan for next week", "from Mon 7 to Sun 13 Dec", "next week"),
    ("what did we do last month", "in November 2026", "last month"),
    ("What is my dentist's name?", None, None),
    ("how long is the Danube", None, None),
    ("I have 3 cats", None, None),
    ("when did we plant the apple tree?", None, None),  # "we" is not Wednesday
    ("which phone do I have now?", None, None),  # the present is no window
    ("I may go to the market", None, None),  # nor is a modal verb a month
]


@pytest.fixture(scope="module", autouse=True)
def warm():
    warm_up()


@pytest.mark.parametrize("question,label,phrase", QUESTIONS)
def test_questions_name_their_window(question, label, phrase):
    window = parse_window(question, NOW, BERLIN)
    if label is None:
        assert window is None
        return
    assert (window.label(BERLIN), window.phrase) == (label, phrase)


def test_windows_are_local_days_as_utc_epochs():
    window = parse_window("yesterday", NOW, BERLIN)
    assert window.start == datetime(2026, 11, 30, tzinfo=BERLIN).timestamp()
    assert window.end == datetime(2026, 12, 1, tzinfo=BERLIN).timestamp()
    assert datetime(2026, 11, 30, 23, 30, tzinfo=timezone.utc).timestamp() not in window  # Tue 00:30 in Berlin
    assert datetime(2026, 11, 29, 23, 30, tzinfo=timezone.utc).timestamp() in window  # Mon 00:30 in Berlin
    # the same moment, in Kolkata, is already Wednesday: "yesterday" is its Tuesday
    kolkata = ZoneInfo("Asia/Kolkata")
    assert parse_window("yesterday", NOW, kolkata).label(kolkata) == "on Tue 1 Dec"


def test_strip_phrase_leaves_the_topic():
    question = "what did I say about the repair last week"
    assert strip_phrase(question, parse_window(question, NOW, BERLIN)) == "what did I say about the repair"
    assert strip_phrase("what is my name", None) == "what is my name"


def test_bounds_take_iso_and_words():
    assert parse_bound("2026-05-01", NOW, BERLIN, end=False) == datetime(2026, 5, 1, tzinfo=BERLIN).timestamp()
    assert parse_bound("2026-05-01T09:30+00:00", NOW, BERLIN, end=False) == datetime(
        2026, 5, 1, 9, 30, tzinfo=timezone.utc).timestamp()
    assert parse_bound("last monday", NOW, BERLIN, end=False) == datetime(2026, 11, 30, tzinfo=BERLIN).timestamp()
    # --until yesterday: up to the end of yesterday
    assert parse_bound("yesterday", NOW, BERLIN, end=True) == datetime(2026, 12, 1, tzinfo=BERLIN).timestamp()
    with pytest.raises(BadInput, match="2 weeks ago") as failure:
        parse_bound("the day the music died", NOW, BERLIN, end=False)
    assert failure.value.exit_code == 2


def test_label_names_years_away_from_this_one():
    start = datetime(2024, 11, 30, tzinfo=BERLIN)
    window = TimeWindow(start.timestamp(), (start + timedelta(days=2)).timestamp(), "x")
    assert window.label(BERLIN) == "from Sat 30 Nov 2024 to Sun 1 Dec 2024"


def test_parsing_is_fast_after_the_first_call():
    """Most messages name no time: they cost a set lookup; one that names a time costs dateparser's
    search (~2-8 ms here). The p50 over a chat-like mix stays under 1 ms (docs/recall.md)."""
    mix = [q for q, _, _ in QUESTIONS] + [
        "can you remind me of my sister's address", "what's the name of the vet", "I started a new job",
        "tell me a joke", "what was the book I liked", "my flight number is LH 402", "what do I like to eat",
        "how do I reset the router", "who is my manager", "what is the wifi password hint",
    ] * 3
    times = []
    for i, question in enumerate(mix):
        start = time.perf_counter()
        parse_window(question, NOW + i * 60, BERLIN)  # a new minute each: no cached answer
        times.append(time.perf_counter() - start)
    assert statistics.median(times) < 0.001


DAY = 86_400.0


def _fill(memory, now: float) -> dict[str, int]:
    """Turns told over months: hundreds about the repair long ago, one last week, and other topics."""
    from memory.turn import NewTurn

    old = [NewTurn(f"I said the repair of the roof, part {i}, went on; the repair man said so about the repair.",
                   conversation_id=f"old{i % 7}", created_at=now - (60 + i) * DAY) for i in range(300)]
    recent = [NewTurn("The plumber finished the repair of the kitchen sink today.", conversation_id="recent",
                      created_at=now - 6 * DAY),  # Wed 25 Nov: last week
              NewTurn("We cooked pumpkin soup with ginger for dinner.", conversation_id="recent",
                      created_at=now - 5 * DAY),
              NewTurn("My dentist is Dr. Okafor on Elm Street.", conversation_id="dentist",
                      created_at=now - 200 * DAY)]
    memory.remember_many(old + recent)
    return {t.text: t.id for t in memory.turns()}


def test_recall_prefers_the_window_the_question_names(memory):
    ids = _fill(memory, NOW)
    question = "what did I say about the repair last week"
    window = parse_window(question, NOW, BERLIN)
    sink = ids["The plumber finished the repair of the kitchen sink today."]
    plain = [h.turn.id for h in memory.recall(question, k=50)]
    assert sink not in plain  # 300 older repairs match better: unfiltered, it is not even a candidate
    hits = memory.recall(question, k=5, window=window)
    assert hits[0].turn.id == sink and hits[0].signals["window"] == 1
    assert all("window" not in h.signals for h in hits[1:])  # the rest as usual, after it
    assert len(hits) == 5


def test_a_window_with_nothing_relevant_keeps_the_usual_hits(memory):
    ids = _fill(memory, NOW)
    question = "what is my dentist's name? I asked last week"
    window = parse_window(question, NOW, BERLIN)
    assert window is not None
    hits = memory.recall(question, k=3, window=window)
    assert hits[0].turn.id == ids["My dentist is Dr. Okafor on Elm Street."]
    assert not any("window" in h.signals for h in hits)  # the week's soup and sink are not about that


def test_time_words_are_not_searched_for(memory):
    """A turn that only shares the time words ("last week") is not a lexical hit."""
    memory.remember("The dog barked all night.", created_at=NOW - 3 * DAY)
    memory.remember("Last week was a long week, last of the month.", created_at=NOW - 100 * DAY)
    question = "what did the dog do last week"
    window = parse_window(question, NOW, BERLIN)
    hits = memory.recall(question, k=2, weights=RecallWeights.only("lexical"), window=window)
    assert [h.turn.text for h in hits] == ["The dog barked all night."]


def test_session_memory_prefers_the_window_too(embedder):
    from memory.session import SessionMemory

    session = SessionMemory(embedder)
    older = session.remember("The repair of the roof gutter was expensive, the repair man said.")
    newer = session.remember("The plumber finished the repair of the kitchen sink.")
    window = TimeWindow(newer.created_at, newer.created_at + 1, "just now")
    hits = session.recall("what did I say about the repair", k=2, window=window)
    assert [h.turn.id for h in hits] == [newer.id, older.id] and hits[0].signals["window"] == 1

