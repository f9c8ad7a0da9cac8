"""A long session in the chat app: one Conversation object holds its state, every worker runs behind
one error boundary, a failed reply never stops the queue, quitting keeps what was typed, a backend
switch keeps a session conversation, Ctrl+N drops it, and a reply cut at the token limit says so.
The model is a loopback Gemini stand-in (tests/standins.py) driven through the real SDK."""
from __future__ import annotations

import asyncio
import json
import subprocess

import pytest
from textual.widgets import Static

from assistant.chat import ChatService
from assistant.config import load_settings
from assistant.tui.app import MemchatApp
from assistant.tui.screens.dialogs import HelpScreen
from assistant.tui.widgets.transcript import TurnView
from memory.memory import Memory
from tests.conftest import MEMCHAT
from tests.standins import StandIn, Step
from tests.test_tui import SIZE, send, until

KEY = "test-key-123"
SECRET = "quillwort"
SLOW = Step(chunks=[f"word{n} " for n in range(2000)], chunk_delay_s=0.05)  # 100 s, unless stopped


def gemini_app(data_dir, model_cache, server, **overrides) -> MemchatApp:
    values = {"data_dir": data_dir, "model_cache": model_cache, "backend": "gemini", "gemini_api_key": KEY,
              "gemini_base_url": server.url, **overrides}
    return MemchatApp(load_settings(values, env_file=None))


def idle(app) -> bool:
    return app.ready and not app.generating and all(w.is_finished for w in app.workers)


def notes(app) -> list[str]:
    return [n.message for n in app._notifications]


def test_a_failed_reply_does_not_stop_the_queue_and_quit_stores_what_was_not_sent(data_dir, model_cache, embedder):
    script = [Step(status=400, error_message="the stand-in refuses this one"), Step(chunks=["Second answer."]), SLOW]

    async def run():
        with StandIn("gemini", script) as server:
            app = gemini_app(data_dir, model_cache, server)
            app.store_lock.acquire()  # the models "load" while three messages are typed
            async with app.run_test(size=SIZE) as pilot:
                for text in ("first message", "second message", "third message"):
                    await send(pilot, text)
                assert len(app.conversation.queue) == 3
                app.store_lock.release()
                await until(pilot, lambda: app.generating and len(server.requests) == 3)  # past the failure
                await send(pilot, "fourth message, typed while the third streams")
                await pilot.press("ctrl+q")
                await until(pilot, lambda: app.return_code is not None)
                assert len(server.requests) == 3  # the fourth was never sent
                return [v.border_subtitle for v in app.query(TurnView) if v.role == "assistant"]
    subtitles = asyncio.run(run())
    assert subtitles[:2] == ["failed", ""]
    with Memory(data_dir, embedder) as memory:
        turns = memory.turns()
    said = [(t.role, t.status, t.text[:14]) for t in turns]
    assert said[:4] == [("user", "ok", "first message"), ("assistant", "failed", "(no reply: Gem"),
                        ("user", "ok", "second message"), ("assistant", "ok", "Second answer.")]
    assert ("user", "ok", "third message") in said
    (unsent,) = [t for t in turns if t.text.startswith("fourth message")]
    assert unsent.meta == {"unsent": True} and len({t.conversation_id for t in turns}) == 1


def test_a_backend_switch_keeps_a_session_conversation_and_ctrl_n_drops_it(data_dir, model_cache, embedder):
    async def run():
        with StandIn("gemini", [Step(chunks=["Noted."])]) as server:
            app = gemini_app(data_dir, model_cache, server, memory_mode="session")
            async with app.run_test(size=SIZE) as pilot:
                await until(pilot, lambda: idle(app))
                hint = str(app.query_one(".hint", Static).render())
                assert "Incognito" in hint and "Everything you write is remembered" not in hint
                await pilot.press("f1")
                help_page = app.screen.query_one("Markdown").source
                assert isinstance(app.screen, HelpScreen) and "nothing of it is written to disk" in help_page
                await pilot.press("escape")
                await send(pilot, f"My locker code is {SECRET}.")
                await until(pilot, lambda: idle(app) and len(server.requests) == 1)
                cid = app.conversation.id
                await send(pilot, "/model gemini-other")  # a new service, loaded in the background
                await until(pilot, lambda: idle(app) and app.conversation.service.backend.model == "gemini-other")
                await send(pilot, "What is my locker code?")
                await until(pilot, lambda: idle(app) and len(server.requests) == 2)
                assert SECRET in json.dumps(server.requests[-1].body) and app.conversation.id == cid
                await pilot.press("ctrl+n")
                assert app.conversation.id is None and app.conversation.session.turns() == []
                await send(pilot, "What is my locker code?")
                await until(pilot, lambda: idle(app) and len(server.requests) == 3)
                assert SECRET not in json.dumps(server.requests[-1].body)
    asyncio.run(run())
    with Memory(data_dir, embedder) as memory:
        assert memory.stats()["turns"] == 0


def test_a_reply_cut_at_the_token_limit_says_so(data_dir, model_cache, cli_env):
    cut = Step(chunks=["The tree was", " a white"], finish_reason="MAX_TOKENS")

    async def run():
        with StandIn("gemini", [cut]) as server:
            app = gemini_app(data_dir, model_cache, server)
            async with app.run_test(size=SIZE) as pilot:
                await until(pilot, lambda: app.ready)
                await send(pilot, "Tell me a story.")
                await until(pilot, lambda: idle(app) and len(list(app.query(TurnView))) == 2)
                reply = list(app.query(TurnView))[1]
                assert reply.border_subtitle == "cut at the token limit"
                assert any("cut at the limit of" in n for n in notes(app))
    asyncio.run(run())
    with StandIn("gemini", [cut]) as server:
        env = {**cli_env, "GEMINI_API_KEY": KEY, "MEMCHAT_GEMINI_BASE_URL": server.url}
        done = subprocess.run([*MEMCHAT, "ask", "Another story.", "--backend", "gemini"], env=env,
                              capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "memchat: note: the reply was cut at the limit of 256 new tokens" in done.stderr


class BrokenBackend:
    """A model backend with a bug: its stream raises an exception that is not a BackendError, with
    the prompt (the message, the recalled memories) in a local variable."""

    name, model, supported_options = "broken", "broken-1", frozenset()

    def stream(self, messages, options, cancel, state):
        prompt = json.dumps(messages)  # noqa: F841 -- what a dump of locals would print
        raise RuntimeError("the backend broke")
        yield  # a generator, as every backend's stream is

    def count_tokens(self, text: str) -> int:
        return max(1, len(text) // 4)


def test_a_bug_in_a_worker_is_one_line_and_the_app_stays_up(data_dir, model_cache, embedder):
    async def run():
        with StandIn("gemini", [Step(chunks=["Fine again."])]) as server:
            app = gemini_app(data_dir, model_cache, server)
            async with app.run_test(size=SIZE) as pilot:
                await until(pilot, lambda: idle(app))
                working = app.conversation.service
                app.conversation.use(ChatService(app.memory, BrokenBackend()))
                await send(pilot, f"My safe word is {SECRET}.")
                await until(pilot, lambda: idle(app) and any("unexpected RuntimeError" in n for n in notes(app)))
                app.in_thread(lambda memory: memory.no_such_method())  # a bug in a store job
                await until(pilot, lambda: idle(app) and any("unexpected AttributeError" in n for n in notes(app)))
                assert app.return_code is None and not any(SECRET in n for n in notes(app))
                app.conversation.use(working)
                await send(pilot, "Still there?")
                await until(pilot, lambda: idle(app) and len(server.requests) == 1)
                assert list(app.query(TurnView))[-1].source.strip() == "Fine again."
    asyncio.run(run())
    with Memory(data_dir, embedder) as memory:
        user, reply, *_ = memory.turns()
    assert SECRET in user.text and reply.status == "failed" and "unexpected RuntimeError" in reply.text


def test_an_exception_nothing_caught_ends_the_app_with_one_line_and_no_locals(data_dir, model_cache, capsys):
    def careless_job() -> None:
        private_prompt = f"the prompt with {SECRET} in it"  # noqa: F841 -- what a locals dump would print
        raise ValueError("boom")

    async def run():
        with StandIn("gemini") as server:
            app = gemini_app(data_dir, model_cache, server)
            with pytest.raises(Exception):  # the test pilot raises what ended the app
                async with app.run_test(size=SIZE) as pilot:
                    await until(pilot, lambda: idle(app))
                    app.run_worker(careless_job, thread=True)  # outside every boundary
                    await until(pilot, lambda: app.return_code is not None)
            return app
    app = asyncio.run(run())
    printed = capsys.readouterr()
    assert app.return_code == 1
    assert SECRET not in printed.out + printed.err and "private_prompt" not in printed.out + printed.err
    assert "memchat: error: unexpected ValueError in test_tui_conversation.py" in printed.out + printed.err


def test_the_settings_modal_refuses_a_count_out_of_range(data_dir, model_cache):
    from textual.widgets import Input

    from assistant.tui.screens.settings import SettingsScreen

    async def run():
        with StandIn("gemini") as server:
            app = gemini_app(data_dir, model_cache, server)
            async with app.run_test(size=SIZE) as pilot:
                await until(pilot, lambda: idle(app))
                await pilot.press("f4")
                await until(pilot, lambda: isinstance(app.screen, SettingsScreen))
                app.screen.query_one("#k", Input).value = "-3"
                app.screen.query_one("#save").press()
                await until(pilot, lambda: any("must be at least 0" in n for n in notes(app)))
                assert isinstance(app.screen, SettingsScreen) and app.conversation.service.k == 3
    asyncio.run(run())


class MiscountingBackend(BrokenBackend):
    """A backend whose token counter has a bug: the prompt cannot be built."""

    def stream(self, messages, options, cancel, state):
        yield "never reached"

    def count_tokens(self, text: str) -> int:
        raise ZeroDivisionError("a bug")


def test_a_failure_after_the_message_is_stored_is_recorded_as_a_failed_reply(memory):
    from assistant.conversation import Conversation, Outgoing

    conversation = Conversation(ChatService(memory, MiscountingBackend()))
    reply = conversation.send(Outgoing("Remember that the boiler service is due in March."))
    assert reply.status == "failed" and reply.error.startswith("unexpected ZeroDivisionError in prompt.py")
    user, failed = memory.turns(reply.conversation_id)
    assert user.text.startswith("Remember that") and failed.status == "failed" and conversation.id == reply.conversation_id


def test_a_message_typed_during_a_profile_switch_goes_to_the_new_profile_without_the_old_ones_secrets(
        data_dir, model_cache, embedder):
    from memory.profiles import profile_dir

    async def run():
        with StandIn("gemini", [Step(chunks=["Noted."])]) as server:
            app = gemini_app(data_dir, model_cache, server, memory_mode="session")
            async with app.run_test(size=SIZE) as pilot:
                await until(pilot, lambda: idle(app))
                await send(pilot, f"My locker code is {SECRET}.")
                await until(pilot, lambda: idle(app) and len(server.requests) == 1)
                app.store_lock.acquire()  # the switch's store work waits, as a slow open would
                await send(pilot, "/profile work")
                await send(pilot, "What is my locker code?")  # typed while the profile switches
                app.store_lock.release()
                await until(pilot, lambda: idle(app) and len(server.requests) == 2)
                assert app.memory.data_dir == profile_dir(data_dir, "work")
                assert SECRET not in json.dumps(server.requests[-1].body)
                assert app.conversation.session.turns()[0].text == "What is my locker code?"
    asyncio.run(run())


def test_an_idle_app_sends_a_forget_the_store_missed_once_it_is_back(data_dir, model_cache, embedder, monkeypatch):
    """A TUI left open all day: a forget during Pinecone's outage leaves the service when it is back,
    though nothing else is recalled or written meanwhile."""
    from assistant.tui import memory_actions
    from memory import store_guard
    from tests.pinecone_standin import PineconeStandIn
    from tests.test_cloud_stores import options_for, vector_ids_of

    monkeypatch.setattr(store_guard, "RETRY_AFTER_S", 0.2)  # the waits, not the behaviour
    monkeypatch.setattr(memory_actions, "DEFERRED_EVERY_S", 0.3)

    async def run():
        with StandIn("gemini") as server, PineconeStandIn(lag_s=0) as pinecone:
            options = options_for("pinecone", pinecone)
            app = gemini_app(data_dir, model_cache, server, store="pinecone",
                             store_settings={"pinecone": options["pinecone"]})
            async with app.run_test(size=SIZE) as pilot:
                await until(pilot, lambda: idle(app))
                secret = await asyncio.to_thread(app.memory.remember, f"My safe word is {SECRET}.")
                namespace = app.memory.store.namespace
                forgotten = vector_ids_of(app.memory, secret.id)
                pinecone.outage = True
                await asyncio.to_thread(app.memory.forget, [secret.id])
                assert set(forgotten) <= set(pinecone.visible(namespace)) and app.memory.deletes_deferred
                pinecone.outage = False
                await until(pilot, lambda: not set(forgotten) & set(pinecone.visible(namespace)), timeout=30)
    asyncio.run(run())


def test_the_recalled_memories_panel_shows_a_superseded_statement_with_both_dates(data_dir, model_cache, embedder):
    import time as clock

    from assistant.tui.widgets.memory_panel import MemoryItem

    now = clock.time()
    with Memory(data_dir, embedder) as memory:
        memory.remember("My phone is a Pixel 6.", conversation_id="a", created_at=now - 200 * 86_400)
        memory.remember("I sold my phone and got an iPhone 15 instead.", conversation_id="b", created_at=now - 9 * 86_400)

    async def run():
        with StandIn("gemini", [Step(chunks=["An iPhone 15."])]) as server:
            app = gemini_app(data_dir, model_cache, server)
            async with app.run_test(size=SIZE) as pilot:
                await until(pilot, lambda: idle(app))
                await send(pilot, "Which phone do I have now?")
                await until(pilot, lambda: idle(app) and len(server.requests) == 1 and app.query(MemoryItem))
                headers = {item.hit.turn.id: str(item.children[0].render()) for item in app.query(MemoryItem)}
                assert "superseded by #2 of" in headers[1] and "superseded" not in headers[2]
    asyncio.run(run())
