"""Time in the prompt: notes dated for questions about time, a fact that changed read as changed,
the person's own day in "Today is", and the answer eval's time cases. The model is a loopback
stand-in (its requests show what the model was given); the local model runs in the short eval."""
from __future__ import annotations

import json
import time
from datetime import timezone
from zoneinfo import ZoneInfo

import pytest

from assistant.answer_eval import DAY, load_cases, names_day
from assistant.chat import ChatService
from assistant.cli import main
from assistant.notes import said_when
from assistant.prompt import build_prompt
from memory.changes import supersessions
from memory.timewindow import parse_window
from memory.turn import Hit, Turn
from tests.conftest import REPO
from tests.standins import StandIn
from tests.test_chat import make_remote

NOW = 1_764_590_400.0  # Mon 1 Dec 2025 12:00 UTC
TZ = ZoneInfo("Pacific/Auckland")  # +13:00 in December: its day is already Tuesday


def _hit(turn_id: int, text: str, days_ago: float) -> Hit:
    return Hit(Turn(id=turn_id, conversation_id=f"c{turn_id}", role="user", text=text,
                    created_at=NOW - days_ago * DAY), 1.0, {})


def _question(messages) -> str:
    return messages[-1]["content"]


def test_today_is_the_persons_day_and_dated_notes_read_against_it():
    hits = [_hit(1, "We planted the apple tree today.", 40)]
    messages, _ = build_prompt("When did we plant the apple tree?", hits, [], 2048, len, now=NOW, tz=TZ, dated=True)
    assert "Today is Tuesday 02 December 2025" in messages[0]["content"]  # Auckland's day, not UTC's Monday
    assert "- 6 weeks ago (Thu 23 Oct): We planted the apple tree today." in _question(messages)
    undated, _ = build_prompt("What is my dentist's name?", hits, [], 2048, len, now=NOW, tz=timezone.utc)
    assert "- We planted the apple tree today." in _question(undated) and "ago" not in _question(undated)
    assert said_when(NOW - 1 * DAY, NOW, timezone.utc) == "yesterday (Sun 30 Nov)"
    assert said_when(NOW - 800 * DAY, NOW, timezone.utc) == "2 years ago (Sat 23 Sep 2023)"


@pytest.fixture(scope="module")
def vectors_of(embedder):
    return lambda hits: dict(zip((h.turn.id for h in hits), embedder.encode([h.turn.text for h in hits])))


# (older, newer, supersedes?) MiniLM cannot tell these apart by similarity alone (docs/answers.md).
PAIRS = [
    ("My phone is a Pixel 6.", "I sold my phone and got an iPhone 15 instead.", True),
    ("I work as a nurse at St. Mary's Hospital.", "I started my new job as a data analyst at Brightwave today.", True),
    ("We live in a flat on Rosendale Road.", "We moved house: our new address is 14 Larch Close.", True),
    ("My team lead is Priya.", "Priya left the company; my new team lead is Marcus.", True),
    ("My sister Ines lives in Bergen.", "My brother Jonas moved to Ghent.", False),  # both still true
    ("My sister Ana lives in Lisbon.", "My cousin Rui moved to Porto.", False),
    ("I finished reading the novel Middlemarch.", "I finished reading the novel Piranesi.", False),  # no change said
    ("I sold my old car and bought a Tesla.", "I sold my phone and got an iPhone 15.", False),  # two changes
    ("My dentist is Dr. Okafor.", "I started pottery classes on Thursdays.", False),  # unrelated
    ("I'm vegetarian.", "I'm left-handed.", False),  # a change word inside a compound says no change
]


@pytest.mark.parametrize("older, newer, expected", PAIRS)
def test_a_newer_statement_supersedes_an_older_one_only_about_the_same_thing(vectors_of, older, newer, expected):
    hits = [_hit(1, older, 200), _hit(2, newer, 9)]
    assert (supersessions(hits, vectors_of(hits)) == {1: 2}) is expected


def test_a_change_supersedes_the_statement_it_is_about_not_its_neighbour(vectors_of):
    hits = [_hit(1, "My bank is Northgate Savings.", 330), _hit(2, "My mortgage is with Halden Building Society.", 200),
            _hit(3, "I closed my Northgate account and moved everything to Monzo.", 14)]
    assert supersessions(hits, vectors_of(hits)) == {1: 3}


def test_the_prompt_puts_the_newer_nearest_and_leaves_the_older_out_for_now():
    old, unrelated, new = _hit(1, "My phone is a Pixel 6.", 200), _hit(2, "I like jazz.", 30), _hit(3, "I sold my phone.", 9)
    ranked = [old, unrelated, new]  # best first: the old statement matched best
    before, _ = build_prompt("Which phone did I have in May?", ranked, [], 2048, len, now=NOW, tz=TZ,
                             dated=True, superseded={1: 3})
    notes = _question(before).split("\n\nMy question")[0].splitlines()[1:]
    assert [n.split(": ", 1)[1] for n in notes] == ["I like jazz.", "My phone is a Pixel 6.", "I sold my phone."]
    assert notes[1].startswith("- earlier, 7 months ago") and "earlier" not in notes[2]
    now, report = build_prompt("Which phone do I have now?", ranked, [], 2048, len, now=NOW, tz=TZ,
                               dated=True, superseded={1: 3}, present=True)
    assert "Pixel" not in _question(now) and report.memory_ids[-1] == 3


def test_a_question_naming_a_window_gets_the_notes_said_inside_it():
    window = parse_window("What did the plumber fix last week?", NOW, TZ)
    inside, outside = _hit(1, "The plumber fixed the kitchen sink.", 5), _hit(2, "The plumber replaced the tap.", 45)
    assert NOW - 5 * DAY in window and NOW - 45 * DAY not in window
    messages, report = build_prompt("What did the plumber fix last week?", [outside, inside], [], 2048, len,
                                    now=NOW, tz=TZ, dated=True, window=window)
    assert report.memory_ids == [1] and "tap" not in _question(messages)
    nothing_inside, _ = build_prompt("What did the plumber fix last week?", [outside], [], 2048, len,
                                     now=NOW, tz=TZ, dated=True, window=window)
    assert "tap" in _question(nothing_inside)  # a window never hides everything


def test_the_chat_loop_sends_the_current_fact_for_a_question_about_now(memory):
    now = time.time()
    memory.remember("My phone is a Pixel 6.", conversation_id="a", created_at=now - 200 * DAY)
    memory.remember("I sold my phone and got an iPhone 15 instead.", conversation_id="b", created_at=now - 9 * DAY)
    with StandIn("gemini") as server:
        service = ChatService(memory, make_remote("gemini", server.url), k=3, tz=TZ)
        reply = service.ask("Which phone do I have now?")
        before = service.ask("Which phone did I have before the iPhone?")
    sent_now = json.dumps(server.requests[0].body)
    assert "iPhone 15" in sent_now and "Pixel" not in sent_now and "9 days ago" in sent_now
    assert reply.to_json()["superseded"] == [{"turn_id": 1, "by": 2}]
    sent_before = json.dumps(server.requests[1].body)  # nothing is deleted: the old fact is still found
    assert "earlier, 7 months ago" in sent_before and "Pixel" in sent_before and before.superseded == {1: 2}


def test_a_when_answer_is_right_when_it_names_the_day():
    event = NOW - 40 * DAY
    for answer in ("You planted it 40 days ago.", "On Wed 22 Oct.", "on 21 October", "about six weeks ago"):
        assert names_day(answer, event, NOW, timezone.utc), answer
    for answer in ("Today.", "You planted it in the back garden.", "Two weeks ago, on 17 Nov."):
        assert not names_day(answer, event, NOW, timezone.utc), answer


def test_the_time_cases_have_three_kinds_and_a_held_out_part():
    dev, held_out = load_cases(REPO / "data" / "time-cases.jsonl"), load_cases(REPO / "data" / "time-cases-heldout.jsonl")
    for cases in (dev, held_out):
        assert {c.kind for c in cases} == {"changed", "when", "window"}
        assert all((c.kind == "when") == (c.event_days_ago is not None) for c in cases)
        assert all(c.reject for c in cases if c.kind != "when")
    assert not {c.question for c in dev} & {c.question for c in held_out}


def test_eval_answers_reports_time_cases_by_kind(capsys, cli_env, monkeypatch, local_backend):
    for name in ("MEMCHAT_DATA_DIR", "MEMCHAT_MODEL_CACHE"):
        monkeypatch.setenv(name, cli_env[name])
    code = main(["eval", "answers", str(REPO / "data" / "time-cases.jsonl"), "--max-new-tokens", "24", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and set(result["by_kind"]) == {"changed", "when", "window"}
    assert result["by_kind"]["window"]["recalled"] == 1.0  # the statement inside each window reached the prompt
    assert sum(row["kind"] == "when" for row in result["rows"]) == result["by_kind"]["when"]["cases"]


def test_a_message_naming_a_time_works_on_a_store_with_nothing_to_compare(memory):
    """A window's candidates were compared with the best similarity of no hits at all (max() of
    nothing raised): the first message of a new store that names a month failed."""
    with StandIn("gemini") as server:
        reply = ChatService(memory, make_remote("gemini", server.url), tz=TZ).ask("The boiler service is due in March.")
    assert reply.status == "ok" and reply.window is not None and reply.error is None


def test_memory_search_and_show_memories_mark_the_superseded_statement_with_both_dates(data_dir, cli_env):
    import subprocess

    from tests.conftest import MEMCHAT

    env = {**cli_env, "MEMCHAT_TZ": "Asia/Kolkata"}
    old = '{"text": "My phone is a Pixel 6.", "created_at": "2026-05-15T10:00:00Z"}'
    new = '{"text": "I sold my phone and got an iPhone 15 instead.", "created_at": "2026-11-22T10:00:00Z"}'
    (data_dir.parent / "phones.jsonl").write_text(old + "\n" + new + "\n")
    subprocess.run([*MEMCHAT, "memory", "import", str(data_dir.parent / "phones.jsonl")], env=env, check=True,
                   capture_output=True)
    done = subprocess.run([*MEMCHAT, "memory", "search", "which phone do I have", "-k", "2"], env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "#1 [" in done.stdout and "superseded by #2 of 2026-11-22 15:30 +05:30" in done.stdout
    found = subprocess.run([*MEMCHAT, "memory", "search", "which phone do I have", "-k", "2", "--json"], env=env,
                           capture_output=True, text=True)
    assert [h.get("superseded_by") for h in json.loads(found.stdout) if h["id"] == 1] == [2]
