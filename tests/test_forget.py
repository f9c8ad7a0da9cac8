"""Forget takes every trace: the turns, their conversation when nothing of it is left (its title and
its id, which may come from an import), a title made from a forgotten message, and the bytes of
every file, in every profile; the slow part runs under the lock other processes wait on."""
from __future__ import annotations

import fcntl
import json
import sqlite3
import subprocess

import pytest
from sqlalchemy import event

from assistant.backends.gemini import GeminiBackend
from assistant.chat import ChatService
from assistant.cli import main
from memory.memory import Memory
from tests.conftest import MEMCHAT, REPO
from tests.standins import StandIn, Step

SECRET = "bluefalcon"
MESSAGE = f"My bank PIN is 4417 and my safe word is {SECRET}"


def _files_holding(root, word: str) -> list[str]:
    return [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and word.encode() in p.read_bytes()]


def _gemini(url: str) -> GeminiBackend:
    return GeminiBackend("gemini-stand-in", "AIzaStandInKey-0123456789abcdef", url, 10.0)


def test_forgetting_both_turns_of_a_chat_forgets_its_title_and_its_conversation(data_dir, embedder):
    with StandIn("gemini", [Step(chunks=["Noted."])]) as server, Memory(data_dir, embedder) as memory:
        memory.remember("An ordinary note about the garden hose", conversation_id="garden")
        reply = ChatService(memory, _gemini(server.url)).ask(MESSAGE)
        assert SECRET in memory.conversations()[0]["title"]  # the chat named it after the message
        assert memory.forget([reply.user_turn_id, reply.reply_turn_id]) == 2
        assert [c["id"] for c in memory.conversations()] == ["garden"]
        assert not memory.has_conversation(reply.conversation_id)
    assert _files_holding(data_dir, SECRET) == []
    assert _files_holding(data_dir, "garden hose")  # the grep would have found a word still stored


def test_a_title_made_from_a_forgotten_message_is_made_again_from_what_is_left(data_dir, embedder):
    script = [Step(chunks=["Noted."]), Step(chunks=["Sure."])]
    with StandIn("gemini", script) as server, Memory(data_dir, embedder) as memory:
        service = ChatService(memory, _gemini(server.url))
        first = service.ask(MESSAGE)
        service.ask("Also, the plumber comes on Tuesday", first.conversation_id)
        memory.forget([first.user_turn_id])
        (conversation,) = memory.conversations()
        assert conversation["title"] == "Also, the plumber comes on Tuesday" and conversation["turns"] == 3
        memory.remember("a note", conversation_id="named")
        memory.rename_conversation("named", "Taxes 2026")  # a title the person gave is theirs: kept
        note = memory.remember("the accountant is Ruth", conversation_id="named")
        memory.forget([note.id])
        assert {c["id"]: c["title"] for c in memory.conversations()}["named"] == "Taxes 2026"
    assert _files_holding(data_dir, SECRET) == []


def test_an_imported_conversation_forgotten_turn_by_turn_leaves_no_id_or_meta(data_dir, embedder, tmp_path):
    export = tmp_path / "conversations.json"
    export.write_text(json.dumps([{
        "title": f"Safe word {SECRET}", "conversation_id": "convo-zebrafinch-77", "create_time": 1_700_000_000,
        "current_node": "m2", "mapping": {
            "m1": {"parent": None, "children": ["m2"], "message": {
                "id": "msgid-okapi-1", "author": {"role": "user"}, "content": {"parts": [MESSAGE]}}},
            "m2": {"parent": "m1", "children": [], "message": {
                "id": "msgid-okapi-2", "author": {"role": "assistant"}, "content": {"parts": ["I will keep it safe."]}}},
        }}]))
    with Memory(data_dir, embedder) as memory:
        memory.remember("An ordinary note about the garden hose", conversation_id="garden")
    assert main(["memory", "import", str(export), "--data-dir", str(data_dir)]) == 0
    with Memory(data_dir, embedder) as memory:
        ids = [t.id for t in memory.turns("convo-zebrafinch-77")]
        assert len(ids) == 2
        memory.forget(ids)
        assert [c["id"] for c in memory.conversations()] == ["garden"]
    for word in (SECRET, "zebrafinch", "okapi"):
        assert _files_holding(data_dir, word) == [], word


def test_a_forget_in_a_profile_leaves_no_byte_there_either(data_dir, cli_env):
    def memchat(*args):
        done = subprocess.run([*MEMCHAT, "--profile", "work", *args], env=cli_env, cwd=REPO,
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout

    memchat("memory", "add", "The quarterly plan is on the shared drive", "--conversation", "plans")
    memchat("memory", "add", MESSAGE, "--conversation", "vault-kestrel")
    (turn,) = json.loads(memchat("memory", "list", "--conversation", "vault-kestrel", "--json"))
    memchat("memory", "forget", str(turn["id"]), "--yes")
    listed = json.loads(memchat("memory", "list", "--json"))
    assert [c["id"] for c in listed] == ["plans"]
    assert (data_dir / "profiles" / "work").is_dir()
    for word in (SECRET, "kestrel"):
        assert _files_holding(data_dir, word) == [], word
    assert _files_holding(data_dir, "quarterly plan")


def test_the_slow_part_of_a_forget_runs_under_the_lock_others_wait_on(data_dir, embedder):
    """A second process waits on the data dir's lock with a message; waiting on SQLite instead, it
    got 'database is locked' after 5 s while a large forget merged the full-text index."""
    seen: list[tuple[str, bool]] = []
    with Memory(data_dir, embedder) as memory:
        for i in range(5):
            memory.remember(f"note {i} about the boat", conversation_id="boat")

        def lock_is_free() -> bool:
            with open(data_dir / "memchat.lock", "rb") as probe:
                try:
                    fcntl.flock(probe, fcntl.LOCK_SH | fcntl.LOCK_NB)
                except BlockingIOError:
                    return False
                fcntl.flock(probe, fcntl.LOCK_UN)
                return True

        @event.listens_for(memory.engine, "before_cursor_execute")
        def watch(conn, cursor, statement, *args):
            if "optimize" in statement or "wal_checkpoint" in statement:
                seen.append((statement, lock_is_free()))

        memory.forget_conversation("boat")
    assert len(seen) == 2 and not any(free for _, free in seen), seen


def test_database_is_locked_reaches_the_person_as_one_line(data_dir, cli_env):
    assert subprocess.run([*MEMCHAT, "memory", "add", "first note"], env=cli_env, cwd=REPO).returncode == 0
    holder = sqlite3.connect(data_dir / "memchat.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another program holding SQLite's write lock past the busy timeout
    try:
        done = subprocess.run([*MEMCHAT, "memory", "add", "second note"], env=cli_env, cwd=REPO,
                              capture_output=True, text=True, timeout=120)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("memchat: error: ") and "busy" in line and "nothing was changed" in line


@pytest.mark.parametrize("bad", [-3, 0])
def test_recall_refuses_a_count_that_is_not_one_or_more(memory, bad):
    from memory.errors import BadInput

    memory.remember("a note about the kayak")
    with pytest.raises(BadInput, match="k must be"):
        memory.recall("kayak", k=bad)


def test_conversations_an_older_forget_left_empty_are_removed_on_upgrade(data_dir, embedder):
    """Before forget tidied conversations, forgetting all of one left its row and its title: the
    upgrade removes such rows, and their bytes."""
    with Memory(data_dir, embedder) as memory:
        memory.remember("An ordinary note about the garden hose", conversation_id="garden")
    db = sqlite3.connect(data_dir / "memchat.db", isolation_level=None)
    db.execute("INSERT INTO conversations(id, title, created_at, updated_at) VALUES (?, ?, 0, 0)",
               ("left-by-an-old-forget", f"My safe word is {SECRET}"))
    db.execute("DELETE FROM migrations WHERE name = '5_forgotten_conversations'")
    db.execute("PRAGMA user_version=4")  # as the memchat before this one left it
    db.close()
    with Memory(data_dir, embedder) as memory:
        assert [c["id"] for c in memory.conversations()] == ["garden"]
    assert _files_holding(data_dir, SECRET) == []


@pytest.mark.parametrize("how", ["id", "conversation", "search", "all"])
def test_forgetting_a_pinned_turn_takes_its_pin_and_leaves_no_byte_of_either(data_dir, embedder, how):
    """A standing memory is a turn with a pin (memory/pins.py): every way of forgetting the turn
    removes the pin in the same transaction; neither its text nor its pin's time (SQLite's 8-byte
    REAL) is left in any file."""
    import struct

    with Memory(data_dir, embedder) as memory:
        memory.remember("An ordinary note about the garden hose", conversation_id="garden")
        kept = memory.remember(f"Always call me Captain {SECRET.title()}", conversation_id="vault")
        memory.remember("and nothing else of note", conversation_id="vault")
        pinned_at = memory.pin(kept.id).pinned_at
        other = memory.pin(memory.remember("Keep answers short.", conversation_id="style").id)
        assert [t.id for t in memory.pins()] == [other.id, kept.id]
        stamp = struct.pack(">d", pinned_at)
        assert any(stamp in p.read_bytes() for p in data_dir.rglob("*") if p.is_file())  # the grep sees a pin
        if how == "id":
            memory.forget([kept.id])
        elif how == "conversation":
            memory.forget_conversation("vault")
        elif how == "search":  # what the memory browser does with a search hit
            (hit,) = [h for h in memory.recall(f"captain {SECRET}", k=3) if h.turn.id == kept.id]
            memory.forget([hit.turn.id])
        else:
            memory.forget_all()
        assert [t.id for t in memory.pins()] == ([] if how == "all" else [other.id])
        with memory.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM pins WHERE turn_id = ?", (kept.id,)).scalar() == 0
    assert [p.name for p in data_dir.rglob("*") if p.is_file() and stamp in p.read_bytes()] == []
    assert _files_holding(data_dir, SECRET.title()) == []
    if how != "all":
        assert _files_holding(data_dir, "garden hose")  # the grep would have found what is still stored
