"""The Textual app through Textual's Pilot, with the real store and the real local model."""
from __future__ import annotations

import asyncio
import time

import pytest
from textual.widgets import Label

from assistant.config import load_settings
from assistant.tui.app import MemchatApp
from assistant.tui.screens.dialogs import ConfirmScreen
from assistant.tui.screens.memory_browser import MemoryBrowser
from assistant.tui.widgets.conversation_list import ConversationItem, ConversationList
from assistant.tui.widgets.memory_panel import MemoryItem, MemoryPanel
from assistant.tui.widgets.status_bar import StatusBar
from assistant.tui.widgets.transcript import TurnView
from memory.memory import Memory
from tests.standins import StandIn, Step

SIZE = (130, 36)


@pytest.fixture
def make_app(data_dir, model_cache, local_backend):  # local_backend: the model cache is converted once
    def _make(**overrides) -> MemchatApp:
        values = {"data_dir": data_dir, "model_cache": model_cache, "greedy": True, "max_new_tokens": 12, **overrides}
        return MemchatApp(load_settings(values, env_file=None))
    return _make


async def until(pilot, condition, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the app"
        await pilot.pause(0.05)


async def send(pilot, text: str) -> None:
    """Type a message key by key and press Enter, as a user does."""
    await pilot.press(*[{" ": "space"}.get(c, c) for c in text], "enter")


def test_send_before_ready_streams_reply_and_fills_memory_panel(make_app, data_dir, embedder):
    with Memory(data_dir, embedder) as memory:
        memory.remember("My cat is called Miso and she loves tuna.", conversation_id="pets", created_at=1_700_000_000)

    async def run():
        app = make_app()
        app.store_lock.acquire()  # hold the loader back, as a slow first start would
        async with app.run_test(size=SIZE) as pilot:
            await send(pilot, "What is my cat called?")  # typed while the models load
            assert not app.ready and app.conversation.queue  # queued, not lost
            assert [v.role for v in app.query(TurnView)] == ["user"]
            app.store_lock.release()
            await until(pilot, lambda: app.ready and not app.generating and not app.conversation.queue
                        and all(w.is_finished for w in app.workers)  # the lists and counts refreshed too
                        and app.query(MemoryItem))  # and the panel drawn (a busy machine draws late)
            views = list(app.query(TurnView))
            assert [v.role for v in views] == ["user", "assistant"]
            assert views[1].source.strip() not in ("", "…")
            hits = [item.hit for item in app.query(MemoryItem)]
            assert any("Miso" in hit.turn.text for hit in hits)
            status = app.query_one(StatusBar)
            assert status.state == "ready" and status.tokens_per_s > 0 and status.memories == 3
    asyncio.run(run())


# A reply that is still streaming when the test acts: the local engine can finish a 300-token
# reply inside the wait for idle that follows a key press, so these two stream from a stand-in
# that sends a chunk every 50 ms, as a model generating them would.
SLOW = [Step(chunks=[f"word{n} " for n in range(400)], chunk_delay_s=0.05)]


def test_escape_stops_a_reply_and_keeps_what_streamed(make_app, data_dir, embedder):
    async def run():
        with StandIn("gemini", SLOW) as server:
            app = make_app(backend="gemini", gemini_api_key="test-key-123", gemini_base_url=server.url)
            async with app.run_test(size=SIZE) as pilot:
                await until(pilot, lambda: app.ready)
                await send(pilot, "Write a long story about a dragon.")
                await until(pilot, lambda: app.generating and len(list(app.query(TurnView))) == 2
                            and list(app.query(TurnView))[1].source not in ("…", ""))
                await pilot.press("escape")
                await until(pilot, lambda: not app.generating)
                reply_view = list(app.query(TurnView))[1]
                assert reply_view.border_subtitle == "stopped"
                assert "word0" in reply_view.source and "word399" not in reply_view.source
                conversation_id = app.conversation.id
        return conversation_id
    cid = asyncio.run(run())
    with Memory(data_dir, embedder) as memory:
        user, reply = memory.turns(cid)
        assert user.text == "Write a long story about a dragon." and reply.status == "stopped"
        assert reply.text.startswith("word0 ")


def test_quit_during_generation_keeps_the_user_turn(make_app, data_dir, embedder):
    async def run():
        with StandIn("gemini", SLOW) as server:
            app = make_app(backend="gemini", gemini_api_key="test-key-123", gemini_base_url=server.url)
            async with app.run_test(size=SIZE) as pilot:
                await until(pilot, lambda: app.ready)
                await send(pilot, "Tell me everything about volcanoes.")
                await until(pilot, lambda: app.generating)
                await pilot.press("ctrl+q")
                await until(pilot, lambda: app.return_code is not None)  # the reply stopped and the app exited
        return app.return_code
    assert asyncio.run(run()) == 0
    with Memory(data_dir, embedder) as memory:
        texts = [t.text for t in memory.turns()]
        assert "Tell me everything about volcanoes." in texts
        assert any(t.status == "stopped" and t.text.startswith("word0") for t in memory.turns())


def test_switch_conversation_and_open_memory_at_its_turn(make_app, data_dir, embedder):
    with Memory(data_dir, embedder) as memory:
        memory.remember("Planning the garden: tomatoes and basil.", conversation_id="garden", conversation_title="Garden")
        memory.remember("Flights to Oslo are booked for May 3.", conversation_id="trip", conversation_title="Trip")

    async def run():
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.ready and len(app.query(ConversationItem)) == 2
                        and all(w.is_finished for w in app.workers))  # the list is not being refreshed
            conversation_list = app.query_one(ConversationList)
            conversation_list.focus()
            items = list(app.query(ConversationItem))
            conversation_list.index = next(n for n, i in enumerate(items) if i.conversation_id == "garden")
            await pilot.press("enter")  # as a keyboard user selects it
            await until(pilot, lambda: app.conversation.id == "garden" and app.query(TurnView))
            assert "tomatoes" in app.query_one(TurnView).source
            panel = app.query_one(MemoryPanel)
            panel.post_message(MemoryPanel.Open("trip", 2))
            await until(pilot, lambda: app.conversation.id == "trip" and app.query(TurnView))
            assert "Oslo" in app.query_one(TurnView).source
    asyncio.run(run())


def test_conversation_list_updates_in_place_after_a_reply(make_app):
    """A reply relabels the list's items instead of rebuilding them, so a click is never lost."""
    async def run():
        app = make_app(max_new_tokens=4)

        def settled():
            return app.ready and not app.generating and all(w.is_finished for w in app.workers)

        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.ready)
            for n, text in enumerate(["Remember that the spare key is under the blue pot.", "Thanks!"]):
                await send(pilot, text)
                await until(pilot, lambda: settled() and app.query(ConversationItem)
                            and f"{2 * (n + 1)} turns" in str(app.query(ConversationItem).first().query(Label).last().render()))
                if n == 0:
                    first_items = list(app.query(ConversationItem))
            assert list(app.query(ConversationItem)) == first_items  # the same widgets, relabelled
            assert app.query_one(ConversationList).index == 0
    asyncio.run(run())


def test_forget_from_memory_browser_with_confirmation(make_app, data_dir, embedder):
    with Memory(data_dir, embedder) as memory:
        memory.remember("My old bank PIN hint is pelican.", conversation_id="bank")
        memory.remember("I like pelicans at the harbour.", conversation_id="birds")

    async def run():
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.ready)
            await send(pilot, "/search bank PIN hint")
            await until(pilot, lambda: isinstance(app.screen, MemoryBrowser))
            browser = app.screen
            await until(pilot, lambda: len(browser.query(MemoryItem)) == 2)
            assert "PIN" in browser._selected().text
            await pilot.press("f")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("y")
            await until(pilot, lambda: isinstance(app.screen, MemoryBrowser) and len(browser.query(MemoryItem)) == 1)
    asyncio.run(run())
    with Memory(data_dir, embedder) as memory:
        assert [t.text for t in memory.turns()] == ["I like pelicans at the harbour."]


def test_backend_error_is_a_notification_not_a_crash(make_app):
    async def run():
        with StandIn("gemini", [Step(status=429, headers={"retry-after": "0"})]) as server:
            app = make_app(backend="gemini", gemini_api_key="test-key-123", gemini_base_url=server.url)
            async with app.run_test(size=SIZE) as pilot:
                await until(pilot, lambda: app.ready)
                await send(pilot, "hello")
                await until(pilot, lambda: app.ready and not app.generating)
                messages = [n.message for n in app._notifications]
                assert any("rate limit" in m for m in messages)
                assert list(app.query(TurnView))[1].border_subtitle == "failed"
                assert app.is_running
    asyncio.run(run())


def test_markup_and_escape_sequences_in_memories_are_shown_as_text(make_app, data_dir, embedder):
    nasty = "[bold red]not markup[/] and \x1b[31mno escape\x1b[0m"
    with Memory(data_dir, embedder) as memory:
        memory.remember(nasty, conversation_id="x")

    async def run():
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.ready and app.query(ConversationItem))
            app.open_conversation("x")
            await until(pilot, lambda: app.query(TurnView))
            source = app.query_one(TurnView).source
            assert "\x1b" not in source and "\\x1b[31m" in source and "[bold red]" in source
    asyncio.run(run())


def test_settings_move_the_memory_to_another_store(make_app, data_dir, embedder):
    """F4 lists every registered store; choosing one copies the vectors there and the status bar says
    so; a hosted store that is not set up is refused with the variable to set, nothing moved."""
    from textual.widgets import Select

    from assistant.tui.screens.settings import SettingsScreen
    from memory.stores import STORES

    with Memory(data_dir, embedder) as memory:
        memory.remember("My locker code at the gym is 4471.", conversation_id="gym")

    async def run():
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.memory is not None)
            await pilot.press("f4")
            await until(pilot, lambda: isinstance(app.screen, SettingsScreen))
            select = app.screen.query_one("#store", Select)
            assert [value for _, value in select._options] == list(STORES)
            select.value = "qdrant"
            app.screen.query_one("#save").press()  # below the fold of a 36-line terminal
            await until(pilot, lambda: app.query_one(StatusBar).store == "qdrant")
            app.apply_settings({"store": "pinecone"})
            await until(pilot, lambda: any("PINECONE_API_KEY" in n.message for n in app._notifications))
            assert app.memory.store_name == "qdrant"
    asyncio.run(run())
    with Memory(data_dir, embedder) as memory:
        assert memory.store_name == "qdrant" and memory.store.count() == 1


def test_quitting_during_the_first_model_conversion_does_not_freeze(data_dir, tmp_path, local_backend):
    """Found by reading the code (#12): quitting while the first model conversion held the store
    lock blocked the UI thread on that lock until the conversion ended (~30 s)."""
    settings = load_settings({"data_dir": data_dir, "model_cache": tmp_path / "fresh-cache"}, env_file=None)

    async def run():
        app = MemchatApp(settings)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.store_lock.locked())  # the loader is converting
            started = time.monotonic()
            await pilot.press("ctrl+q")
        return time.monotonic() - started

    assert asyncio.run(run()) < 5.0
