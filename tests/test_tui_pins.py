"""Standing memories in the chat app, driven through Textual's Pilot with the real store: the
proposal after a lasting instruction (F7 keeps it, nothing is pinned unasked), /pin, /pin TEXT,
/pins with unpin, and the pin key of the recalled-memories panel."""
from __future__ import annotations

import asyncio

from assistant.tui.screens.pins import PinItem, PinsScreen
from assistant.tui.widgets.memory_panel import MemoryItem, MemoryPanel
from assistant.tui.widgets.prompt_input import PromptInput
from memory.memory import Memory
from tests.standins import StandIn, Step
from tests.test_tui import SIZE, make_app, send, until  # noqa: F401 (make_app: the fixture)

KM = "From now on, always give me distances in kilometres."


def _gemini(make_app, server):
    return make_app(backend="gemini", gemini_api_key="test-key-123", gemini_base_url=server.url)


def _settled(app) -> bool:
    return app.ready and not app.generating and not app.conversation.queue and all(w.is_finished for w in app.workers)


def _said(app) -> list[str]:
    return [str(n.message) for n in app._notifications]


def test_a_lasting_instruction_is_proposed_and_f7_keeps_it(make_app, data_dir, embedder):
    async def run():
        with StandIn("gemini", [Step(chunks=["Noted."])]) as server:
            app = _gemini(make_app, server)
            async with app.run_test(size=SIZE) as pilot:
                await until(pilot, lambda: app.ready)
                await send(pilot, "What's the weather like in Lisbon?")
                await until(pilot, lambda: _settled(app))
                assert not any("Keep it for every chat" in m for m in _said(app))
                await send(pilot, KM)
                await until(pilot, lambda: _settled(app) and any("Keep it for every chat" in m for m in _said(app)))
                assert app.memory.pins() == []  # proposed, not pinned
                await pilot.press("f7")
                await until(pilot, lambda: _settled(app) and any(m.startswith("Pinned #") for m in _said(app)))
                assert [t.text for t in app.memory.pins()] == [KM]
                await pilot.press("f7")  # the proposal is used up
                await until(pilot, lambda: any(m.startswith("No proposal to keep") for m in _said(app)))
    asyncio.run(run())


def test_slash_pin_pins_the_last_message_or_a_text_and_pins_lists_and_unpins(make_app, data_dir, embedder):
    async def run():
        with StandIn("gemini", [Step(chunks=["Sure."])]) as server:
            app = _gemini(make_app, server)
            async with app.run_test(size=SIZE) as pilot:
                await until(pilot, lambda: app.ready)
                await send(pilot, "/pin")
                await until(pilot, lambda: any("Nothing said in this conversation yet" in m for m in _said(app)))
                await send(pilot, "Keep it brief please")
                await until(pilot, lambda: _settled(app))
                await send(pilot, "/pin")
                await until(pilot, lambda: _settled(app) and app.memory.pins())
                assert [t.text for t in app.memory.pins()] == ["Keep it brief please"]
                await send(pilot, "/pin I am vegetarian")
                await until(pilot, lambda: _settled(app) and len(app.memory.pins()) == 2)
                (veg, brief) = app.memory.pins()
                assert veg.text == "I am vegetarian" and veg.role == "user" and veg.conversation_id != brief.conversation_id
                await send(pilot, "/pins")
                await until(pilot, lambda: isinstance(app.screen, PinsScreen) and len(app.screen.query(PinItem)) == 2)
                assert "I am vegetarian" in str(app.screen.query(PinItem).first().query("Label").last().render())
                await pilot.press("u")  # the newest pin, highlighted first
                await until(pilot, lambda: _settled(app) and len(app.screen.query(PinItem)) == 1)
                assert [t.text for t in app.memory.pins()] == ["Keep it brief please"]
                await pilot.press("escape")
                await send(pilot, "/private")
                await send(pilot, "Never use emojis")
                await until(pilot, lambda: _settled(app))
                await send(pilot, "/pin")
                await until(pilot, lambda: any("kept out of memory (private)" in m for m in _said(app)))
        with Memory(data_dir, embedder) as memory:
            assert [t.text for t in memory.pins()] == ["Keep it brief please"]
            assert "Never use emojis" not in [t.text for t in memory.turns()]
    asyncio.run(run())


def test_the_memory_panels_key_pins_the_selected_memory(make_app, data_dir, embedder):
    with Memory(data_dir, embedder) as memory:
        told = memory.remember("I'm allergic to shellfish.", conversation_id="health")

    async def run():
        with StandIn("gemini", [Step(chunks=["Noted."])]) as server:
            app = _gemini(make_app, server)
            async with app.run_test(size=SIZE) as pilot:
                await until(pilot, lambda: app.ready)
                await send(pilot, "Which seafood am I allergic to?")
                await until(pilot, lambda: _settled(app) and app.query(MemoryItem))
                panel = app.query_one(MemoryPanel)
                panel.focus()
                items = list(app.query(MemoryItem))
                panel.index = next(n for n, item in enumerate(items) if item.hit.turn.id == told.id)
                await pilot.press("p")
                await until(pilot, lambda: _settled(app) and app.memory.pins())
                assert [t.id for t in app.memory.pins()] == [told.id]
                app.query_one(PromptInput).focus()
                await send(pilot, "Suggest a dinner")  # a question unlike it: the pin is in the prompt anyway
                await until(pilot, lambda: _settled(app) and len(server.requests) == 2)
                assert "allergic to shellfish" in str(server.requests[-1].body)
                assert "1 standing" in str(panel.border_title)
    asyncio.run(run())
