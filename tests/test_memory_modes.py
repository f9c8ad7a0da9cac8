"""Memory modes (persistent, session, off) and single private turns, through the chat service, the
CLI and the TUI, with a loopback Gemini stand-in as the model. "Nothing written to disk" is checked
the blunt way: after the process or app is done, no file under the data dir holds the words."""
from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

from assistant.chat import ChatService
from assistant.conversation import Conversation, Outgoing
from memory.memory import Memory
from tests.conftest import MEMCHAT
from tests.standins import StandIn
from tests.test_chat import KEY, make_remote

SECRET = "zorblefax"  # a word no model file, tokenizer or schema holds


def files_holding(root: Path, word: str) -> list[str]:
    """Every file under root whose bytes contain `word` (UTF-8), as a grep -r would find."""
    needle = word.encode()
    return [str(p) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def prompt_text(request) -> str:
    return json.dumps(request.body)


def test_session_mode_recalls_within_the_conversation_and_writes_nothing(data_dir, embedder):
    with Memory(data_dir, embedder) as memory:
        memory.remember("I am allergic to penicillin.", conversation_id="health")
    with StandIn("gemini") as server, Memory(data_dir, embedder) as memory:
        conversation = Conversation(ChatService(memory, make_remote("gemini", server.url), k=3), "session")
        first = conversation.send(Outgoing(f"My locker code is {SECRET} 4417, please keep it in mind."))
        assert first.status == "ok" and not first.stored and first.user_turn_id is None
        # Pushed out of the recent window by 20 more turns, it is recalled from the session.
        for n in range(10):
            conversation.send(Outgoing(f"Tell me a fact about the number {n}."))
        reply = conversation.send(Outgoing("What is my locker code?"))
        assert reply.conversation_id == first.conversation_id == conversation.id
        sent = prompt_text(server.requests[-1])
        assert SECRET in sent and "locker code" in sent
        assert any(SECRET in h.turn.text and "session" in h.signals for h in reply.memories)
        persistent = conversation.send(Outgoing("Which medicine must I avoid?"))
        assert any("penicillin" in h.turn.text for h in persistent.memories)  # from persistent memory
        none = conversation.send(Outgoing("Which medicine must I avoid?"), use_memory=False)  # --no-recall
        assert not any("penicillin" in h.turn.text for h in none.memories)
        assert memory.stats()["turns"] == 1
        # A new conversation drops the old one's session turns: nothing of it stays in this process.
        conversation.start_new()
        fresh = conversation.send(Outgoing("What is my locker code?"))
        assert SECRET not in prompt_text(server.requests[-1]) and fresh.conversation_id != first.conversation_id
    assert files_holding(data_dir, SECRET) == []


def test_off_answers_each_message_alone(memory):
    with StandIn("gemini") as server:
        conversation = Conversation(ChatService(memory, make_remote("gemini", server.url), k=3), "off")
        memory.remember("My sister lives in Porto.")
        reply = conversation.send(Outgoing("Where does my sister live?"))
        again = conversation.send(Outgoing("And my brother?"))
        assert reply.memories == [] and again.memories == [] and reply.conversation_id is None
        assert len(server.requests[-1].body["contents"]) == 1  # no history, no memories: the message alone
        assert "Porto" not in prompt_text(server.requests[-1])
    assert memory.stats()["turns"] == 1


def test_a_private_turn_stays_out_of_the_store_but_in_the_conversation(memory, data_dir):
    with StandIn("gemini") as server:
        conversation = Conversation(ChatService(memory, make_remote("gemini", server.url), k=3))
        kept = conversation.send(Outgoing("I started learning the cello this month."))
        conversation.private_next = True
        private = conversation.send(conversation.submit(f"My bank PIN hint is {SECRET}."))
        assert private.stored is False and private.user_turn_id is None and private.reply_turn_id is None
        assert conversation.private_next is False  # the flag applies to one message
        conversation.queue.clear()
        later = conversation.send(Outgoing("What did I tell you about my PIN hint?"))
        assert SECRET in prompt_text(server.requests[-1])  # still part of this conversation
        assert later.stored and [t.text for t in memory.turns(kept.conversation_id)][::2] == [
            "I started learning the cello this month.", "What did I tell you about my PIN hint?"]
        conversation.start_new()
        other = conversation.send(Outgoing("What is my PIN hint?"))  # another conversation never sees it
        assert SECRET not in prompt_text(server.requests[-1]) and other.stored
    memory.close()
    assert files_holding(data_dir, SECRET) == []


def run_cli(cli_env, server, *args) -> subprocess.CompletedProcess:
    env = {**cli_env, "GEMINI_API_KEY": KEY, "MEMCHAT_GEMINI_BASE_URL": server.url}
    return subprocess.run([*MEMCHAT, *args], env=env, capture_output=True, text=True, timeout=120)


def test_the_cli_session_and_no_store_leave_nothing_on_disk(data_dir, cli_env):
    with StandIn("gemini") as server:
        assert run_cli(cli_env, server, "memory", "add", "I water the ferns on Sundays.").returncode == 0
        for flags in (["--memory", "session"], ["--no-store"], ["--memory", "off"]):
            done = run_cli(cli_env, server, "ask", f"Remember {SECRET} for me.", "--backend", "gemini", "--json", *flags)
            assert done.returncode == 0, done.stderr
            assert json.loads(done.stdout)["stored"] is False
        bad = run_cli(cli_env, server, "ask", "hi", "--backend", "gemini", "--memory", "sometimes")
        assert bad.returncode == 2 and "invalid choice" in bad.stderr
        env_mode = run_cli({**cli_env, "MEMCHAT_MEMORY": "session"}, server, "ask", f"{SECRET} again", "--backend",
                           "gemini", "--json")
        assert json.loads(env_mode.stdout)["memory_mode"] == "session"
        stored = run_cli(cli_env, server, "ask", "What do I do on Sundays?", "--backend", "gemini", "--json")
        assert json.loads(stored.stdout)["stored"] is True
    assert files_holding(data_dir, SECRET) == []
    assert files_holding(data_dir, "Sundays")  # the persistent turns were written: the grep can see words


def test_the_tui_switches_mode_and_keeps_a_private_message_out(data_dir, model_cache, embedder):
    from assistant.config import load_settings
    from assistant.tui.app import MemchatApp
    from assistant.tui.widgets.status_bar import StatusBar
    from tests.test_tui import SIZE, send, until

    async def go():
        with StandIn("gemini") as server:
            settings = load_settings({"data_dir": data_dir, "model_cache": model_cache, "backend": "gemini",
                                      "gemini_api_key": KEY, "gemini_base_url": server.url}, env_file=None)
            app = MemchatApp(settings)
            async with app.run_test(size=SIZE) as pilot:
                status = app.query_one(StatusBar)
                await until(pilot, lambda: app.ready and all(w.is_finished for w in app.workers))
                await send(pilot, "I prefer window seats.")
                await until(pilot, lambda: not app.generating and status.memories == 2)
                await pilot.press("f6")  # the key: the next message is private
                assert status.private
                await send(pilot, f"The spare key is under {SECRET}.")
                await until(pilot, lambda: not app.generating and len(server.requests) == 2)
                assert not status.private
                await send(pilot, "/private")  # the command does the same
                await send(pilot, f"{SECRET} is also my wifi name.")
                await until(pilot, lambda: not app.generating and len(server.requests) == 3)
                await send(pilot, "/memory session")
                assert status.mode == "session" and app.conversation.id is None
                await send(pilot, f"Incognito: {SECRET} birthday plans.")
                await until(pilot, lambda: not app.generating and len(server.requests) == 4)
                await send(pilot, "/memory off")
                await send(pilot, "Stateless question.")
                await until(pilot, lambda: not app.generating and len(server.requests) == 5)
                assert len(server.requests[-1].body["contents"]) == 1
                await until(pilot, lambda: all(w.is_finished for w in app.workers))
                assert status.mode == "off" and status.memories == 2
    asyncio.run(go())
    assert files_holding(data_dir, SECRET) == []
    with Memory(data_dir, embedder) as memory:
        assert [t.text for t in memory.turns()][0] == "I prefer window seats." and memory.stats()["turns"] == 2


def test_an_incognito_ask_with_the_local_model_leaves_nothing_in_the_data_dir_or_model_cache(
        data_dir, model_cache, cli_env, local_backend):  # local_backend: the model is converted already
    done = subprocess.run([*MEMCHAT, "ask", f"My safe combination is {SECRET}.", "--memory", "session",
                           "--greedy", "--max-new-tokens", "8", "--json"], env=cli_env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    reply = json.loads(done.stdout)
    assert reply["backend"] == "local" and reply["stored"] is False and reply["memory_mode"] == "session"
    assert files_holding(data_dir, SECRET) == [] and files_holding(model_cache, SECRET) == []
