"""Standing memories (pinned turns): the store (memory/pins.py), the prompt (assistant/prompt.py),
the chat loop's proposal and every prompt's pins (assistant/chat.py), and `memchat memory pin/pins/
unpin` and `memchat ask` as a person runs them. Forgetting a pinned turn is in tests/test_forget.py,
its export and import in tests/test_io.py."""
from __future__ import annotations

import json
import sqlite3
import time
from datetime import timezone

import pytest

from assistant.backends.gemini import GeminiBackend
from assistant.chat import ChatService
from assistant.cli import main
from assistant.prompt import NOTES_HEADING, PINS_HEADING, PINS_RULE, build_prompt, pin_room
from assistant.standing import pins_for_prompt, standing_memories
from memory.errors import BadInput, NotFound
from memory.memory import Memory
from memory.profiles import profile_dir
from memory.turn import Hit, Turn
from tests.standins import StandIn, Step

KEY = "AIzaStandInKey-0123456789abcdef"
KM = "From now on, always give me distances in kilometres."


# -- the store ---------------------------------------------------------------------------------
def test_pin_unpin_and_the_list_newest_pin_first(memory):
    km = memory.remember(KM, conversation_id="a")
    reply = memory.remember("Noted.", role="assistant", conversation_id="a")
    veg = memory.remember("I'm vegetarian.", conversation_id="b")
    assert memory.pins() == [] and memory.get(km.id).pinned_at is None
    before = time.time()
    first = memory.pin(km.id)
    assert before <= first.pinned_at <= time.time()
    memory.pin(veg.id)
    assert [t.id for t in memory.pins()] == [veg.id, km.id]
    assert memory.pin(km.id).pinned_at == first.pinned_at  # pinned again: since the first time
    assert memory.get(km.id).pinned_at == first.pinned_at and memory.get(reply.id).pinned_at is None
    assert [t.pinned_at is not None for t in memory.turns("a")] == [True, False]
    with pytest.raises(BadInput, match=f"turn {reply.id}: only what you said"):
        memory.pin(reply.id)
    with pytest.raises(NotFound, match="no turn with id 999"):
        memory.pin(999)
    memory.unpin(km.id)
    assert [t.id for t in memory.pins()] == [veg.id] and memory.get(km.id).text == KM  # the turn stays
    with pytest.raises(NotFound, match=f"turn {km.id} is not pinned"):
        memory.unpin(km.id)
    with pytest.raises(NotFound, match="no turn with id 999"):
        memory.unpin(999)


def test_pins_are_kept_on_disk_and_each_profile_has_its_own(data_dir, embedder):
    with Memory(data_dir, embedder) as memory:
        memory.pin(memory.remember("Keep answers short.").id)
    with Memory(profile_dir(data_dir, "work"), embedder) as work:
        assert work.pins() == []
        work.pin(work.remember("Always cite the ticket number.").id)
        assert [t.text for t in work.pins()] == ["Always cite the ticket number."]
    with Memory(data_dir, embedder) as memory:
        assert [t.text for t in memory.pins()] == ["Keep answers short."]


def test_a_store_from_before_pins_is_upgraded_in_place(data_dir, embedder):
    with Memory(data_dir, embedder) as memory:
        kept = memory.remember("I'm allergic to shellfish.")
    db = sqlite3.connect(data_dir / "memchat.db", isolation_level=None)
    db.execute("DROP TABLE pins")
    db.execute("DELETE FROM migrations WHERE name = '6_pins'")
    db.execute("PRAGMA user_version=5")  # as the memchat before this one left it
    db.close()
    with Memory(data_dir, embedder) as memory:
        assert memory.pins() == [] and memory.get(kept.id).text == "I'm allergic to shellfish."
        memory.pin(kept.id)
        assert [t.id for t in memory.pins()] == [kept.id]


# -- the prompt ----------------------------------------------------------------------------------
NOW = 1_790_000_000.0


def _hit(turn_id: int, text: str, days_ago: float, pinned_days_ago: float | None = None) -> Hit:
    pinned = None if pinned_days_ago is None else NOW - pinned_days_ago * 86_400
    return Hit(Turn(id=turn_id, conversation_id=f"c{turn_id}", role="user", text=text,
                    created_at=NOW - days_ago * 86_400, pinned_at=pinned), 0.0, {})


def test_standing_memories_come_first_and_are_said_once():
    pins = [_hit(2, "I'm vegetarian.", 5, 1), _hit(1, KM, 9, 8)]  # newest pin first
    notes = [_hit(3, "My sister Ana lives in Lyon.", 20), _hit(1, KM, 9, 8)]
    messages, report = build_prompt("How far is Paris from Lyon?", notes, [], 2048, len, now=NOW, tz=timezone.utc,
                                    pins=pins)
    assert PINS_RULE in messages[0]["content"]
    question = messages[-1]["content"]
    assert question.index(PINS_HEADING) < question.index(KM) < question.index("- I'm vegetarian.") \
        < question.index(NOTES_HEADING) < question.index("Ana") < question.index("My question:")
    assert question.count(KM) == 1  # the pinned turn is not repeated among the notes
    assert report.pin_ids == [1, 2] and report.memory_ids == [3] and report.pins_used == 2  # the newest pin last
    dated, _ = build_prompt("When did I say that?", [], [], 2048, len, now=NOW, tz=timezone.utc, pins=pins,
                            dated=True)
    assert "- 9 days ago" in dated[-1]["content"]  # dated like the notes, when the notes are
    alone, _ = build_prompt("Hello", [], [], 2048, len, now=NOW, tz=timezone.utc, pins=pins)
    assert alone[-1]["content"].startswith(PINS_HEADING) and len(alone) == 2  # no worked example without notes
    none, report = build_prompt("Hello", [], [], 2048, len, now=NOW, tz=timezone.utc, pins=[])
    assert none[-1]["content"] == "Hello" and PINS_RULE not in none[0]["content"] and report.pin_ids == []


def test_standing_memories_have_a_budget_of_their_own_newest_first():
    pins = [_hit(n, f"Standing instruction number {n} about the way to answer.", 30 - n, 30 - n)
            for n in range(10, 0, -1)]  # newest pin first
    one = len(f"- {pins[0].turn.text}") + 1
    heading = len(PINS_HEADING) + 4
    _, report = build_prompt("Hello", [], [], 100_000, len, now=NOW, pins=pins, pin_budget=heading + 3 * one)
    assert report.pin_ids == [8, 9, 10] and report.pins_cut == 7  # the three newest, oldest of them first
    _, report = build_prompt("Hello", [], [], 100_000, len, now=NOW, pins=pins, pin_budget=0)
    assert report.pin_ids == [] and report.pins_cut == 10
    _, report = build_prompt("Hello", [], [], 900, len, now=NOW, pins=pins, pin_budget=100_000)
    assert 0 < report.pins_used < 10 and report.tokens <= 900  # the whole budget bounds them too
    assert report.pin_ids[-1] == 10


# -- the chat loop ---------------------------------------------------------------------------------
def _sent(server) -> list[str]:
    """Each request's whole text: the system instruction and every message, as the model got them."""
    return [json.dumps(r.body, ensure_ascii=False) for r in server.requests]


def test_every_prompt_gets_the_standing_memories_whatever_it_asks(memory):
    script = [Step(chunks=["Noted."])]
    with StandIn("gemini", script) as server:
        service = ChatService(memory, GeminiBackend("gemini-stand-in", KEY, server.url, 10.0), k=3)
        said = service.ask(KM)
        assert said.proposal == said.user_turn_id and memory.pins() == []  # proposed, not pinned
        assert PINS_HEADING not in _sent(server)[-1]  # no standing memory yet
        memory.pin(said.user_turn_id)
        memory.remember("My sister Ana lives in Lyon.", conversation_id="family")
        reply = service.ask("How far is Paris from Lyon?")  # a new conversation, a question unlike the pin
        prompt = _sent(server)[-1]
        assert PINS_HEADING in prompt and KM in prompt and prompt.count(KM) == 1
        assert [h.turn.id for h in reply.pins] == [said.user_turn_id] and reply.proposal is None
        assert said.user_turn_id not in [h.turn.id for h in reply.memories]
        assert reply.to_json()["pins"] == [said.user_turn_id]
        assert service.ask("What should I cook tonight?").pins  # and the next, and the next
        assert KM in _sent(server)[-1]
        service.pin_tokens = 0
        assert not service.ask("How far is Nice from Lyon?").pins and PINS_HEADING not in _sent(server)[-1]


def test_a_newer_standing_memory_that_contradicts_an_older_one_replaces_it(memory):
    km = memory.remember("Always give me distances in kilometres.", created_at=time.time() - 9 * 86_400)
    veg = memory.remember("I'm vegetarian.", created_at=time.time() - 5 * 86_400)
    miles = memory.remember("From now on, give me distances in miles instead.", created_at=time.time() - 3600)
    for turn in (km, veg, miles):
        memory.pin(turn.id)
    kept, pinned = standing_memories(memory)
    assert [h.turn.id for h in kept] == [miles.id, veg.id] and sorted(pinned) == sorted([km.id, veg.id, miles.id])
    with StandIn("gemini") as server:
        reply = ChatService(memory, GeminiBackend("gemini-stand-in", KEY, server.url, 10.0)).ask("How far is Lyon?")
        prompt = _sent(server)[-1]
    assert "miles instead" in prompt and "kilometres" not in prompt  # nor recalled as a note
    assert sorted(h.turn.id for h in reply.pins) == sorted([miles.id, veg.id])


def test_when_the_standing_memories_do_not_all_fit_the_nearest_to_the_message_go_first(memory):
    """A person with many standing memories asks about one thing at a time: with room for two, a
    question about dinner gets "I'm vegetarian" however old its pin; a pin left out for room is
    still recallable as a note, while one a newer pin replaced is not."""
    said = ["I'm vegetarian.", "Always format code with syntax highlighting.", "Keep answers short.",
            "Use British spelling in everything you write.", "Always give me distances in kilometres.",
            "From now on, give me distances in miles instead.", "I'm left-handed.", "Call me Sam."]
    turns = [memory.remember(text, created_at=time.time() - (len(said) - n) * 86_400) for n, text in enumerate(said)]
    for turn in turns:
        memory.pin(turn.id)
    veg, km = turns[0].id, turns[4].id
    count = lambda text: len(text.split())  # noqa: E731
    everything, excluded = pins_for_prompt(memory, "What should I cook tonight?", 10_000, count)
    assert len(everything) == len(said) - 1 and excluded == {t.id for t in turns}  # all but the replaced one
    room = count(PINS_HEADING) + 4 + 2 * 4
    kept, excluded = pins_for_prompt(memory, "What should I cook tonight?", room, count)
    assert veg in [h.turn.id for h in kept] and len(kept) == 2
    assert excluded == {h.turn.id for h in kept} | {km}  # the others may come back as notes
    newest = [h.turn.id for h in standing_memories(memory)[0]][:2]
    kept, _ = pins_for_prompt(memory, "How should I format this Python function?", room, count)
    assert turns[1].id in [h.turn.id for h in kept] and [h.turn.id for h in kept] != newest
    assert pins_for_prompt(memory, "Hello", 0, count) == ([], frozenset(t.id for t in turns))


def test_the_whole_budget_bounds_which_pins_are_chosen_and_none_is_lost(memory):
    """A long message leaves less than the pins' own budget: the chat picks the pins by that room
    (nearest first), so the prompt holds all it picked and the rest stay recallable."""
    said = ["I'm vegetarian.", "Keep answers short.", "Call me Sam.", "Always format code with syntax highlighting.",
            "Use British spelling in everything you write."]
    turns = [memory.remember(text, created_at=time.time() - (len(said) - n) * 86_400) for n, text in enumerate(said)]
    for turn in turns:
        memory.pin(turn.id)
    count = lambda text: len(text.split())  # noqa: E731
    message = "What should I cook tonight? " + "I have rice, beans and peppers in the cupboard. " * 8
    budget = 10_000 - pin_room(message, 10_000, 10_000, count) + 25  # room for a few pins beside the message
    room = pin_room(message, budget, 200, count)
    assert 0 < room < 200
    kept, excluded = pins_for_prompt(memory, message, room, count)
    _, report = build_prompt(message, [], [], budget, count, pins=kept, pin_budget=200)
    assert turns[0].id in report.pin_ids and sorted(report.pin_ids) == sorted(h.turn.id for h in kept)
    assert excluded == set(report.pin_ids)  # the others may come back as notes


def test_no_proposal_for_an_ordinary_message_a_private_one_or_an_incognito_one(memory):
    with StandIn("gemini") as server:
        service = ChatService(memory, GeminiBackend("gemini-stand-in", KEY, server.url, 10.0))
        assert service.ask("What's the weather like in Lisbon?").proposal is None
        assert service.ask("I went hiking with my kids last weekend.").proposal is None
        assert service.ask("Keep answers short.", store=False).proposal is None  # nothing stored to pin
        assert service.ask("Keep answers short.", mode="session").proposal is None
        first = service.ask("Keep answers short.")
        assert first.proposal == first.user_turn_id
        memory.pin(first.user_turn_id)
        assert service.ask("Keep answers short.").proposal is None  # already a standing memory
        assert service.ask("Keep answers short.", mode="off").pins == []  # stateless: the message alone


# -- the commands ------------------------------------------------------------------------------------
@pytest.fixture
def run(data_dir, capsys, monkeypatch):
    monkeypatch.setenv("MEMCHAT_TZ", "Asia/Kolkata")

    def _run(*args):
        try:
            code = main([*args, "--data-dir", str(data_dir)])
        except SystemExit as exit_:  # a usage mistake: argparse's one line and status
            code = exit_.code
        out, err = capsys.readouterr()
        return code, out, err
    return _run


def test_memory_pin_pins_unpin_as_a_person_runs_them(run):
    assert run("memory", "add", KM, "--conversation", "c")[0] == 0
    assert run("memory", "add", "Noted.", "--role", "assistant", "--conversation", "c")[0] == 0
    code, out, _ = run("memory", "pin", "1")
    assert code == 0 and out.startswith("pinned turn 1: it goes into every prompt")
    code, out, _ = run("memory", "pin", "1")
    assert code == 0 and "already a standing memory" in out and "+05:30" in out
    code, out, _ = run("memory", "pins")
    assert code == 0 and out.startswith("#1 [c] user ") and "pinned " in out and out.count("+05:30") == 2
    assert KM in out
    (listed,) = json.loads(run("memory", "pins", "--json")[1])
    assert listed["id"] == 1 and listed["pinned_at"].endswith("+00:00")  # JSON stays UTC
    assert "pinned" in run("memory", "show", "1")[1]
    for args, words in ((("pin", "2"), "only what you said"), (("pin", "99"), "no turn with id 99"),
                        (("pin", "abc"), "is not a whole number"), (("pin", "0"), "must be at least 1"),
                        (("unpin", "2"), "turn 2 is not pinned"), (("unpin", "99"), "no turn with id 99")):
        code, out, err = run("memory", *args)
        assert code == 2 and words in err and err.count("\n") == 1 and "Traceback" not in err, (args, err)
    code, out, _ = run("memory", "unpin", "1")
    assert code == 0 and out.startswith("unpinned turn 1; it stays stored")
    assert run("memory", "pins")[1].startswith("no standing memories yet")
    assert json.loads(run("memory", "pins", "--json")[1]) == []


def test_memory_pin_has_help(capsys):
    for action in ("pin", "unpin", "pins"):
        with pytest.raises(SystemExit) as exit_:
            main(["memory", action, "--help"])
        assert exit_.value.code == 0 and "standing memor" in " ".join(capsys.readouterr().out.split())


def test_ask_proposes_in_one_line_and_shows_the_standing_memories(run, monkeypatch):
    with StandIn("gemini") as server:
        monkeypatch.setenv("GEMINI_API_KEY", KEY)
        monkeypatch.setenv("MEMCHAT_GEMINI_BASE_URL", server.url)
        code, _, err = run("ask", KM, "--backend", "gemini")
        (line,) = [line for line in err.splitlines() if "keep this for every chat" in line]
        assert code == 0 and line == ("memchat: keep this for every chat? `memchat memory pin 1` makes it a "
                                      "standing memory")
        assert run("memory", "pins", "--json")[1].strip() == "[]"  # nothing pinned unasked
        assert run("memory", "pin", "1")[0] == 0
        code, _, err = run("ask", "How far is Paris from Lyon?", "--backend", "gemini", "--show-memories")
        assert code == 0 and "keep this for every chat" not in err
        assert "[standing #1 pinned " in err and "+05:30] " + KM in err
        code, out, _ = run("ask", "Hello", "--backend", "gemini", "--json", "--pin-tokens", "0")
        assert code == 0 and json.loads(out)["pins"] == []
