"""Snapshots of the main screen, the memory browser and the settings modal (pytest-textual-snapshot).

Regenerate after an intended visual change with: .venv/bin/pytest tests/test_tui_snapshots.py --snapshot-update
"""
from __future__ import annotations

import time

import pytest

from assistant.config import load_settings
from assistant.tui.app import MemchatApp
from assistant.tui.widgets.transcript import TurnView
from memory.memory import Memory

SIZE = (120, 34)
DAY = 1_767_225_600.0  # 2026-01-01, so dates on screen do not change from run to run


@pytest.fixture
def snapshot_app(data_dir, embedder, model_cache, local_backend, monkeypatch):
    monkeypatch.setenv("MEMCHAT_TZ", "UTC")  # times on screen are local: the same zone on every machine
    with Memory(data_dir, embedder) as memory:
        memory.remember("Can you suggest a **name** for my new cat?", conversation_id="cat",
                        conversation_title="Naming the cat", created_at=DAY)
        memory.remember("How about *Miso*? Short, warm and easy to call:\n\n```python\ncat = \"Miso\"\n```",
                        role="assistant", conversation_id="cat", created_at=DAY + 5)
        memory.remember("I'm allergic to peanuts.", conversation_id="food", conversation_title="Recipes",
                        created_at=DAY - 86_400)
    return MemchatApp(load_settings({"data_dir": data_dir, "model_cache": model_cache}, env_file=None))


async def _open_cat_conversation(pilot) -> None:
    app = pilot.app
    for widget in app.query("PromptInput, Input"):
        widget.cursor_blink = False  # a blinking cursor would make the picture depend on timing
    deadline = time.monotonic() + 60
    while not app.ready:
        assert time.monotonic() < deadline
        await pilot.pause(0.05)
    app.open_conversation("cat")
    await settle(pilot, lambda: len(app.query(TurnView)) == 2)


async def settle(pilot, condition) -> None:
    """Wait for `condition` and for every background job (list refreshes, searches) to finish."""
    app = pilot.app
    deadline = time.monotonic() + 60
    while not (condition() and all(w.is_finished for w in app.workers)):
        assert time.monotonic() < deadline
        await pilot.pause(0.05)
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()  # until every message the jobs posted is handled and drawn


def test_main_screen(snap_compare, snapshot_app):
    assert snap_compare(snapshot_app, terminal_size=SIZE, run_before=_open_cat_conversation)


def test_memory_browser(snap_compare, snapshot_app):
    async def browse(pilot):
        await _open_cat_conversation(pilot)
        pilot.app.run_slash("/search peanut allergy")
        await settle(pilot, lambda: pilot.app.screen.query("MemoryItem"))

    assert snap_compare(snapshot_app, terminal_size=SIZE, run_before=browse)


def test_settings_modal(snap_compare, snapshot_app):
    async def settings(pilot):
        await _open_cat_conversation(pilot)
        await pilot.press("f4")
        await settle(pilot, lambda: pilot.app.screen.query("#settings"))

    assert snap_compare(snapshot_app, terminal_size=SIZE, run_before=settings)
