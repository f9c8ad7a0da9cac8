"""Every time the CLI shows is the person's local time with its offset (MEMCHAT_TZ, else the
platform's); JSON keeps UTC ISO; --since/--until and search take time words."""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from assistant.cli import main
from assistant.config import ConfigError, load_settings
from assistant.localtime import person_tz, shown_time
from memory.memory import Memory
from tests.standins import StandIn

SAID = datetime(2026, 11, 22, 14, 5, tzinfo=timezone.utc).timestamp()
KOLKATA = "2026-11-22 19:35 +05:30"  # the same moment in Asia/Kolkata
DAY = 86_400.0


def test_shown_time_is_local_with_its_offset():
    assert shown_time(SAID, ZoneInfo("Asia/Kolkata")) == KOLKATA
    assert shown_time(SAID, ZoneInfo("America/Sao_Paulo")) == "2026-11-22 11:05 -03:00"
    # a summer date in Berlin gets the summer offset, not today's
    assert shown_time(datetime(2026, 7, 1, 12, tzinfo=timezone.utc).timestamp(),
                      ZoneInfo("Europe/Berlin")) == "2026-07-01 14:00 +02:00"


def test_bad_zone_is_a_config_error(monkeypatch):
    monkeypatch.setenv("MEMCHAT_TZ", "Mars/Olympus")
    with pytest.raises(ConfigError, match="MEMCHAT_TZ='Mars/Olympus' is not a time zone") as failure:
        load_settings(env_file=None)
    assert failure.value.exit_code == 2
    monkeypatch.setenv("MEMCHAT_TZ", "America/Sao_Paulo")
    assert person_tz(load_settings(env_file=None).tz) == ZoneInfo("America/Sao_Paulo")
    assert person_tz(None) is not None  # the platform's


@pytest.fixture
def run(data_dir, capsys, monkeypatch):
    monkeypatch.setenv("MEMCHAT_TZ", "Asia/Kolkata")

    def _run(*args):
        code = main([*args, "--data-dir", str(data_dir)])
        out, err = capsys.readouterr()
        return code, out, err
    return _run


@pytest.fixture
def stored(data_dir, embedder):
    now = time.time()
    with Memory(data_dir, embedder) as memory:
        planted = memory.remember("We planted the apple tree by the fence.", conversation_id="garden",
                                  conversation_title="Garden", created_at=SAID)
        recent = memory.remember("The apple tree has its first blossom.", conversation_id="garden",
                                 created_at=now - 60)
        return planted.id, recent.id


def test_cli_shows_local_times_and_json_keeps_utc(run, stored):
    planted, _ = stored
    code, out, _ = run("memory", "show", str(planted))
    assert code == 0 and KOLKATA in out
    code, out, _ = run("memory", "list", "--conversation", "garden")
    assert KOLKATA in out
    code, out, _ = run("memory", "search", "apple tree planted", "-k", "2")
    assert KOLKATA in out
    code, out, _ = run("memory", "list")
    assert "+05:30" in out  # the conversation's last update, local
    hits = json.loads(run("memory", "search", "apple tree planted", "-k", "2", "--json")[1])
    assert "2026-11-22T14:05:00+00:00" in [h["created_at"] for h in hits]
    shown = json.loads(run("memory", "show", str(planted), "--json")[1])
    assert shown[0]["created_at"] == "2026-11-22T14:05:00+00:00"


def test_since_and_until_take_words(run, stored):
    planted, recent = stored
    ids = lambda out: [h["id"] for h in json.loads(out)]  # noqa: E731
    assert ids(run("memory", "search", "apple tree", "--since", "last monday", "--json")[1]) == [recent]
    assert ids(run("memory", "search", "apple tree", "--until", "yesterday", "--json")[1]) == [planted]
    assert ids(run("memory", "search", "apple tree", "--since", "2026-11-22", "--until", "2026-11-23",
                   "--json")[1]) == [planted]  # local days: 22 Nov in Kolkata holds 19:35
    code, _, err = run("memory", "search", "apple tree", "--since", "the day the music died")
    assert code == 2 and "2 weeks ago" in err and err.count("\n") == 1 and "Traceback" not in err


def test_search_names_the_window_it_understood(run, stored):
    _, recent = stored
    code, out, _ = run("memory", "search", "the apple tree this week", "-k", "2")
    assert code == 0 and out.splitlines()[0].startswith("window: from ") and "'this week'" in out.splitlines()[0]
    hits = json.loads(run("memory", "search", "the apple tree this week", "-k", "2", "--json")[1])
    assert hits[0]["id"] == recent and hits[0]["signals"]["window"] == 1


def test_bad_zone_exits_2_with_one_line(run, monkeypatch):
    monkeypatch.setenv("MEMCHAT_TZ", "Mars/Olympus")
    code, _, err = run("memory", "stats")
    assert code == 2 and "MEMCHAT_TZ" in err and err.count("\n") == 1 and "Traceback" not in err


def test_ask_show_memories_names_the_window_in_local_time(run, stored, monkeypatch):
    with StandIn("gemini") as server:
        monkeypatch.setenv("GEMINI_API_KEY", "AIzaStandInKey-0123456789abcdef")
        monkeypatch.setenv("MEMCHAT_GEMINI_BASE_URL", server.url)
        code, _, err = run("ask", "what did I say about the apple tree in November 2026?", "--backend", "gemini",
                           "--show-memories")
        assert code == 0
        assert "window: in November 2026 ('in November 2026')" in err and KOLKATA in err
        code, out, _ = run("ask", "what did I say about the apple tree in November 2026?", "--backend", "gemini",
                           "--json")
    window = json.loads(out)["window"]
    assert window["label"] == "in November 2026" and window["start"] == "2026-10-31T18:30:00+00:00"


def test_tui_shows_local_times_and_the_window(data_dir, model_cache, stored, monkeypatch):
    import asyncio

    from assistant.tui.app import MemchatApp
    from assistant.tui.screens.memory_browser import MemoryBrowser
    from assistant.tui.widgets.memory_panel import MemoryItem, MemoryPanel
    from tests.test_tui import send, until

    monkeypatch.setenv("MEMCHAT_TZ", "Asia/Kolkata")
    monkeypatch.setenv("GEMINI_API_KEY", "AIzaStandInKey-0123456789abcdef")

    def header(item) -> str:
        return str(item.query("Label").first().render())

    async def run(url):
        monkeypatch.setenv("MEMCHAT_GEMINI_BASE_URL", url)
        app = MemchatApp(load_settings({"data_dir": data_dir, "model_cache": model_cache, "backend": "gemini"},
                                       env_file=None))
        async with app.run_test(size=(130, 36)) as pilot:
            await until(pilot, lambda: app.ready)
            await send(pilot, "what did I say about the apple tree in November 2026?")
            panel = app.query_one(MemoryPanel)
            await until(pilot, lambda: not app.generating and "November" in str(panel.border_title))
            assert panel.border_title.endswith("· in November 2026")
            assert any(KOLKATA in header(item) and "in the window" in header(item) for item in panel.query(MemoryItem))
            await send(pilot, "/search apple tree in November 2026")
            await until(pilot, lambda: isinstance(app.screen, MemoryBrowser) and app.screen.query(MemoryItem))
            results = app.screen.query_one("#results")
            await until(pilot, lambda: "November" in str(results.border_title))
            assert KOLKATA in header(app.screen.query(MemoryItem).first())

    with StandIn("gemini") as server:
        asyncio.run(run(server.url))
