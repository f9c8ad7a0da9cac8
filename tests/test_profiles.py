"""Profiles: memories that belong to someone. Each profile is its own store; nothing of one is seen
from another, through the CLI, the TUI, and every vector store."""
from __future__ import annotations

import asyncio
import json

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from assistant.cli import main
from memory.memory import Memory
from memory.profiles import list_profiles, profile_dir
from memory.stores import STORES
from tests.test_stores import service_options


def run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_profiles_see_only_their_own_memories_from_the_cli(data_dir, model_cache, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("MEMCHAT_MODEL_CACHE", str(model_cache))
    d = ["--data-dir", str(data_dir)]
    assert run(capsys, "memory", "add", "Our anniversary dinner is at Lucio's on Friday.", *d)[0] == 0
    assert run(capsys, "memory", "add", "The payroll migration is due on Friday.", "--profile", "work", *d)[0] == 0
    monkeypatch.setenv("MEMCHAT_PROFILE", "work")  # the variable picks the profile as the flag does
    assert run(capsys, "memory", "add", "Standup moved to 9:30 on Friday.", *d)[0] == 0

    code, out, _ = run(capsys, "memory", "search", "what is on Friday", "--json", *d)
    assert code == 0 and sorted(h["text"] for h in json.loads(out)) == [
        "Standup moved to 9:30 on Friday.", "The payroll migration is due on Friday."]
    code, out, _ = run(capsys, "memory", "search", "what is on Friday", "--json", "--profile", "default", *d)
    assert [h["text"] for h in json.loads(out)] == ["Our anniversary dinner is at Lucio's on Friday."]
    code, out, _ = run(capsys, "memory", "stats", "--json", *d)
    stats = json.loads(out)
    assert stats["profile"] == "work" and stats["turns"] == 2 and stats["data_dir"] == str(profile_dir(data_dir, "work"))

    code, out, _ = run(capsys, "memory", "list", "--profiles", "--json", *d)
    assert [(p["profile"], p["turns"]) for p in json.loads(out)] == [("default", 1), ("work", 2)]

    # Export carries the profile; without a profile chosen, an import goes back where it came from,
    # and with one it goes there.
    exported = tmp_path / "work.jsonl"
    assert run(capsys, "memory", "export", str(exported), *d)[0] == 0
    lines = [json.loads(line) for line in exported.read_text().splitlines()]
    assert {line["profile"] for line in lines if "conversation" not in line} == {"work"}  # each turn's
    monkeypatch.delenv("MEMCHAT_PROFILE")
    code, out, _ = run(capsys, "memory", "import", str(exported), "--json", *d)
    assert json.loads(out) == {"format": "jsonl", "profile": "work", "added": 0, "skipped": 2, "left_out": []}
    code, out, _ = run(capsys, "memory", "import", str(exported), "--profile", "home", "--json", *d)
    assert json.loads(out) == {"format": "jsonl", "profile": "home", "added": 2, "skipped": 0, "left_out": []}
    assert list_profiles(data_dir) == ["default", "home", "work"]

    # forget --all empties one profile only.
    assert run(capsys, "memory", "forget", "--all", "--yes", "--profile", "work", *d)[0] == 0
    code, out, _ = run(capsys, "memory", "list", "--profiles", "--json", *d)
    assert [(p["profile"], p["turns"]) for p in json.loads(out)] == [("default", 1), ("home", 2), ("work", 0)]

    code, _, err = run(capsys, "memory", "stats", "--profile", "../default", *d)
    assert code == 2 and "profile '../default'" in err and "Traceback" not in err


def test_an_export_naming_two_profiles_asks_where_to_go(data_dir, model_cache, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("MEMCHAT_MODEL_CACHE", str(model_cache))
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text(json.dumps({"text": "a", "profile": "work"}) + "\n" + json.dumps({"text": "b", "profile": "home"}) + "\n")
    code, _, err = run(capsys, "memory", "import", str(mixed), "--data-dir", str(data_dir))
    assert code == 2 and "profiles home, work" in err and "--profile NAME" in err
    assert list_profiles(data_dir) == []  # refused before anything was opened
    code, out, _ = run(capsys, "memory", "import", str(mixed), "--profile", "both", "--json", "--data-dir", str(data_dir))
    assert code == 0 and json.loads(out)["added"] == 2


# -- isolation as a property, on every store ------------------------------------------------------
WORDS = ["garden", "invoice", "piano", "dentist", "flight", "budget", "sister", "recipe", "server", "birthday"]
PROFILES = ["default", "work", "home"]
operation = st.one_of(
    st.tuples(st.just("write"), st.sampled_from(PROFILES), st.lists(st.sampled_from(WORDS), min_size=2, max_size=5)),
    st.tuples(st.just("forget"), st.sampled_from(PROFILES), st.integers(0, 50)),
    st.tuples(st.just("recall"), st.sampled_from(PROFILES), st.lists(st.sampled_from(WORDS), min_size=1, max_size=3)),
)


@pytest.fixture(params=list(STORES))
def store_name(request) -> str:
    return request.param


def test_no_recall_ever_returns_another_profiles_memory(store_name, request, data_dir, embedder):
    """Random writes, forgets and recalls interleaved across three profiles sharing one data dir
    (and, for the hosted stores, one service): every hit is a live turn of the profile asked."""
    pinecone = request.getfixturevalue("pinecone_service") if store_name == "pinecone" else None
    weaviate = request.getfixturevalue("weaviate_service") if store_name == "weaviate" else None
    options = service_options(store_name, pinecone, weaviate)
    memories = {p: Memory(profile_dir(data_dir, p), embedder, store=store_name, store_options=options) for p in PROFILES}
    live: dict[str, dict[int, str]] = {p: {} for p in PROFILES}  # profile -> turn id -> text
    serial = iter(range(10**6))
    try:
        @settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(st.lists(operation, min_size=4, max_size=12))
        def interleaved(ops):
            for kind, profile, arg in ops:
                memory = memories[profile]
                if kind == "write":
                    text = f"{' '.join(arg)} (note {next(serial)})"  # the same words go to several profiles
                    live[profile][memory.remember(text).id] = text
                elif kind == "forget" and live[profile]:
                    turn_id = sorted(live[profile])[arg % len(live[profile])]
                    memory.forget([turn_id])
                    del live[profile][turn_id]
                elif kind == "recall":
                    for hit in memory.recall(" ".join(arg), k=10):
                        assert live[profile].get(hit.turn.id) == hit.turn.text, (profile, hit.turn.text)
                    assert memory.stats()["turns"] == len(live[profile])

        interleaved()
        for profile, memory in memories.items():  # export and list see the profile's own turns only
            assert {t.id: t.text for t in memory.iter_turns()} == live[profile]
    finally:
        for memory in memories.values():
            memory.close()


# -- the TUI -----------------------------------------------------------------------------------
def test_the_tui_switches_profile_and_shows_it(data_dir, model_cache, embedder):
    from assistant.config import load_settings
    from assistant.tui.app import MemchatApp
    from assistant.tui.widgets.status_bar import StatusBar
    from tests.standins import StandIn
    from tests.test_tui import SIZE, send, until

    with Memory(profile_dir(data_dir, "work"), embedder) as memory:
        memory.remember("The office wifi password is on the fridge note.", conversation_id="office")

    async def go():
        with StandIn("gemini") as server:
            settings_ = load_settings({"data_dir": data_dir, "model_cache": model_cache, "backend": "gemini",
                                       "gemini_api_key": "test-key", "gemini_base_url": server.url}, env_file=None)
            app = MemchatApp(settings_)
            async with app.run_test(size=SIZE) as pilot:
                await until(pilot, lambda: app.ready and all(w.is_finished for w in app.workers))
                status = app.query_one(StatusBar)
                assert status.profile == "default" and status.memories == 0
                await send(pilot, "/profile work")
                await until(pilot, lambda: status.profile == "work" and status.memories == 1)
                assert app.memory.data_dir == profile_dir(data_dir, "work")
                await send(pilot, "Where is the wifi password?")
                await until(pilot, lambda: not app.generating and status.memories == 3)
                assert "fridge" in server.requests[-1].body["contents"][-1]["parts"][0]["text"]
                await send(pilot, "/profile default")
                await until(pilot, lambda: status.profile == "default" and all(w.is_finished for w in app.workers))
                assert status.memories == 0 and app.conversation.id is None
    asyncio.run(go())



def test_a_profile_that_cannot_be_read_is_listed_as_such(data_dir, capsys):
    broken = profile_dir(data_dir, "broken")
    broken.mkdir(parents=True)
    (broken / "memchat.db").write_bytes(b"not a database")
    code, out, _ = run(capsys, "memory", "list", "--profiles", "--data-dir", str(data_dir))
    assert code == 0 and "broken" in out and "cannot be read" in out and "Traceback" not in out
