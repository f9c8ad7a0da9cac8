"""Export, import (memchat JSONL, ChatGPT, LoCoMo), de-duplication and crash safety."""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import sqlite3
import subprocess
import time

import pytest

from sqlalchemy import update

from memory.errors import BadInput
from memory.io import export_jsonl, exported_profile, read_records
from memory.memory import Memory
from memory.record import conversations
from memory.turn import MAX_TURN_CHARS, ROLES
from tests.conftest import LOCOMO_MINI, MEMCHAT, REPO


def _every_field_set(memory) -> None:
    """A store in which every field of a turn and of a conversation holds something of its own."""
    memory.remember("Héllo — ünïcode ✓ 日本語 مرحبا 🦊 e\u0301 and \"quotes\"\nand a second line", conversation_id="c1",
                    created_at=1_700_000_000.123456, id=5, conversation_title="Plans for Ísafjörður 🧭")
    memory.remember("assistant reply", role="assistant", conversation_id="c1", backend="local", model="smol",
                    tokens=7, meta={"usage": {"prompt": 3, "completion": 4}, "note": "ß"}, id=17)
    memory.remember("(no reply: connection refused)", role="assistant", conversation_id="c1", status="failed",
                    backend="gemini", model="gemini-2.5-flash", id=18)
    memory.remember("a reply cut short", role="assistant", conversation_id="c2", status="stopped", backend="openai",
                    model="gpt-x", tokens=2, id=1000)  # created now: a time finer than a microsecond
    memory.remember("a system note", role="system", conversation_id="c2")
    memory.pin(5)  # a standing memory: since when is a field of its turn
    memory.rename_conversation("c2", "Second chat")
    with memory.engine.begin() as conn:  # a conversation begun before its first stored turn, and
        # updated after its last (the state a forget of its first and last turns leaves)
        conn.execute(update(conversations).where(conversations.c.id == "c2")
                     .values(created_at=1_600_000_000.5, updated_at=round(time.time() + 60, 6)))


def test_export_import_round_trip_is_lossless_field_by_field(memory, tmp_path, embedder):
    """#24: export dropped conversation titles and times. Every field of every turn and conversation
    comes back from export → import into a fresh store (a pin and its time too), and so does the
    profile the export names."""
    _every_field_set(memory)
    turns, convs = memory.turns(), memory.conversations()
    for name in (f.name for f in dataclasses.fields(turns[0])):  # each field is set somewhere, not default
        assert any(getattr(t, name) not in (None, {}, "ok") for t in turns), name
    assert {t.status for t in turns} == {"ok", "failed", "stopped"} and {t.role for t in turns} == set(ROLES)
    assert all(c["title"] for c in convs) and all(v is not None for c in convs for v in c.values())
    first = tmp_path / "a.jsonl"
    export_jsonl(memory, first, profile="work")
    parsed = read_records(first)
    assert exported_profile(parsed.records, first) == "work"
    with Memory(tmp_path / "other", embedder) as copy:
        result = copy.remember_many(parsed.records)
        assert (result.added, result.skipped) == (len(turns), 0)
        assert [dataclasses.asdict(t) for t in copy.turns()] == [dataclasses.asdict(t) for t in turns]
        assert sorted(copy.conversations(), key=str) == sorted(convs, key=str)
        second = tmp_path / "b.jsonl"
        export_jsonl(copy, second, profile="work")
    assert first.read_text() == second.read_text()
    assert memory.remember_many(read_records(second).records).added == 0  # and into its own store: nothing new
    assert [t.id for t in memory.pins()] == [5]


def test_a_pin_comes_back_with_its_turn_once_and_only_for_what_the_person_said(memory, tmp_path, embedder):
    """Re-importing an export with pins adds no turn and no pin; a turn already stored keeps its own
    pin state; a pinned_at on a reply is refused with the line named, before anything is stored."""
    kept = memory.remember("From now on, give me distances in kilometres.", conversation_id="c")
    memory.remember("Noted: kilometres.", role="assistant", conversation_id="c")
    memory.remember("I'm vegetarian.", conversation_id="d")
    pinned = memory.pin(kept.id)
    path = tmp_path / "pins.jsonl"
    export_jsonl(memory, path)
    assert sum('"pinned_at"' in line for line in path.read_text().splitlines()) == 1
    with Memory(tmp_path / "other", embedder) as copy:
        for _ in range(2):  # the second import adds nothing: no turn, no second pin
            copy.remember_many(read_records(path).records)
            assert [(t.text, t.pinned_at) for t in copy.pins()] == [(kept.text, pinned.pinned_at)]
        assert copy.stats()["turns"] == 3
    memory.unpin(kept.id)
    assert memory.remember_many(read_records(path).records).added == 0 and memory.pins() == []
    lines = path.read_text().splitlines()
    reply = json.loads(lines[-2])
    assert reply["role"] == "assistant"
    reply["pinned_at"] = "2026-01-01T00:00:00+00:00"
    lines[-2] = json.dumps(reply)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(BadInput, match=f"line {len(lines) - 1}: only what you said can be a standing memory"):
        read_records(bad)


def test_reimport_adds_nothing_twice(memory, tmp_path):
    sample = REPO / "data" / "sample-memories.jsonl"
    assert memory.remember_many(read_records(sample)[1]).added == 4
    again = memory.remember_many(read_records(sample)[1])
    assert (again.added, again.skipped) == (0, 4)
    assert memory.stats()["turns"] == 4
    exported = tmp_path / "e.jsonl"
    export_jsonl(memory, exported)
    assert memory.remember_many(read_records(exported)[1]).added == 0  # its own export, too


def test_jsonl_without_ids_or_times_is_idempotent(memory, tmp_path):
    path = tmp_path / "notes.jsonl"
    path.write_text('{"text": "buy oat milk"}\n{"text": "call the bank", "role": "user"}\n')
    assert memory.remember_many(read_records(path)[1]).added == 2
    assert memory.remember_many(read_records(path)[1]).added == 0


@pytest.mark.parametrize("content, reason", [
    ('{"text": "ok"}\n{"text": ""}\n', "line 2: empty text"),
    ('{"text": "ok"}\nnot json\n', "line 2: invalid JSON"),
    ('{"text": "ok", "role": "robot"}\n', "line 1: unknown role"),
    ('{"text": "ok", "created_at": "yesterday"}\n', "line 1: bad created_at"),
    ('[1, 2]', "neither a ChatGPT export nor LoCoMo"),
])
def test_malformed_file_is_rejected_with_line_and_reason(memory, tmp_path, content, reason):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(BadInput, match=reason) as caught:
        read_records(path)
    assert str(path) in str(caught.value)
    assert memory.stats()["turns"] == 0


def test_invalid_utf8_file_is_rejected(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes('{"text": "caf\xe9"}\n'.encode("latin-1"))
    with pytest.raises(BadInput, match="not valid UTF-8"):
        read_records(path)


def test_chatgpt_export_keeps_the_visible_branch(memory):
    fmt, records, _ = read_records(REPO / "data" / "chatgpt-sample.json")
    assert fmt == "chatgpt"
    assert [r.role for r in records] == ["user", "assistant", "user"]
    assert "regenerated" not in " ".join(r.text for r in records)
    memory.remember_many(records)
    conv = memory.conversations()[0]
    assert conv["title"] == "Trip planning" and conv["turns"] == 3
    assert "Reykjavik" in memory.recall("what should I pack for Iceland", k=1)[0].turn.text


def test_locomo_import_uses_speakers_captions_and_session_dates(tmp_path):
    sample = json.loads(LOCOMO_MINI.read_text())[:1]
    path = tmp_path / "one.json"
    path.write_text(json.dumps(sample))
    fmt, records, _ = read_records(path)
    assert fmt == "locomo"
    conv = sample[0]["conversation"]
    first = conv["session_1"][0]
    assert records[0].text.startswith(first["speaker"] + ": ")
    assert records[0].meta["dia_id"] == first["dia_id"]
    with_caption = next(t for t in conv["session_1"] if t.get("blip_caption"))
    assert any(with_caption["blip_caption"] in r.text for r in records)
    assert len(records) == sum(len(v) for k, v in conv.items() if k.startswith("session_") and isinstance(v, list))


def _count_turns(db) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return conn.execute("SELECT count(*) FROM turns").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_kill_9_during_import_then_rerun_completes_without_duplicates(tmp_path, data_dir, cli_env, embedder):
    path = tmp_path / "big.jsonl"
    with open(path, "w") as f:
        for i in range(2500):
            f.write(json.dumps({"conversation_id": f"c{i // 50}", "text": f"journal entry {i}: walked {i % 17} km and read chapter {i}",
                                "created_at": f"2025-01-01T00:00:{i % 60:02d}+00:00", "meta": {"n": i}}) + "\n")
    proc = subprocess.Popen([*MEMCHAT, "memory", "import", str(path)], env=cli_env, cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    db = data_dir / "memchat.db"
    deadline = time.monotonic() + 120
    while _count_turns(db) == 0 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    # Take SQLite's write lock: the import cannot commit another batch while the test holds it, so
    # the kill lands mid-import however fast the machine embeds (the import waits on the lock).
    blocker = sqlite3.connect(db, timeout=30, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        assert proc.poll() is None, "the import ended before its second batch: " + proc.stderr.read().decode()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    with Memory(data_dir, embedder) as memory:
        stats = memory.stats()
        assert 0 < stats["turns"] < 2500
        assert stats["indexed"] == stats["vectors"] == stats["turns"]
        result = memory.remember_many(read_records(path)[1])
        assert result.added == 2500 - stats["turns"] and result.skipped == stats["turns"]
        assert memory.stats()["turns"] == memory.stats()["indexed"] == 2500


def test_chatgpt_export_with_a_parent_cycle_is_rejected_not_followed_forever(tmp_path):
    """Found by reading the code (#12): following `parent` with no visited set looped forever."""
    import threading

    mapping = {"a": {"id": "a", "parent": "b", "children": [],
                     "message": {"id": "a", "author": {"role": "user"}, "content": {"parts": ["hi"]}}},
               "b": {"id": "b", "parent": "a", "children": ["a"], "message": None}}
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps([{"title": "loop", "id": "c1", "current_node": "a", "mapping": mapping}]))
    outcome = []

    def read() -> None:
        try:
            read_records(path, "chatgpt")
        except BadInput as exc:
            outcome.append(str(exc))

    worker = threading.Thread(target=read, daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "import still following the cycle"
    assert outcome and "conversation 0" in outcome[0] and "cycle" in outcome[0]


def test_a_bad_date_deep_in_a_chatgpt_record_names_the_record(tmp_path):
    """Found by `make fuzz`: a date check below the record raised a rejection that did not say where."""
    mapping = {"a": {"id": "a", "parent": None, "children": [], "message": {
        "id": "a", "author": {"role": "user"}, "content": {"parts": ["hi"]}, "create_time": 1e300}}}
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps([{"title": "t", "id": "c1", "current_node": "a", "mapping": mapping}]))
    with pytest.raises(BadInput, match=r"conversation 0.*created_at .* is not a date"):
        read_records(path, "chatgpt")


@pytest.mark.parametrize("field", ["speaker", "dia_id"])
def test_locomo_text_sqlite_cannot_hold_is_a_rejection_not_an_insert_failure(tmp_path, field):
    """Found by `make fuzz`: a lone surrogate in a LoCoMo speaker passed validation and failed at insert."""
    sample = json.loads(LOCOMO_MINI.read_text())[:1]
    sample[0]["conversation"]["session_1"][0][field] = "Caro\ud800line"
    path = tmp_path / "one.json"
    path.write_text(json.dumps(sample))  # ensure_ascii keeps the surrogate as \ud800 in the file
    with pytest.raises(BadInput, match=r"sample 0: .*not valid UTF-8"):
        read_records(path)  # before anything is stored


def test_untimed_lines_keep_their_identity_when_the_file_is_touched_copied_renamed_or_appended(memory, tmp_path):
    """#24: lines without created_at took their identity from the file's mtime and name."""
    path = tmp_path / "notes.jsonl"
    path.write_text('{"text": "buy oat milk"}\n{"text": "call the bank"}\n{"text": "buy oat milk"}\n')
    assert memory.remember_many(read_records(path).records).added == 3  # the same text twice: both kept
    os.utime(path, (time.time() + 3600, time.time() + 3600))  # touched
    assert memory.remember_many(read_records(path).records).added == 0
    copy = tmp_path / "elsewhere" / "renamed-copy.jsonl"
    copy.parent.mkdir()
    copy.write_bytes(path.read_bytes())  # copied under another name, with a new mtime
    assert memory.remember_many(read_records(copy).records).added == 0
    with open(copy, "a") as f:
        f.write('{"text": "water the plants"}\n{"text": "buy oat milk"}\n')
    result = memory.remember_many(read_records(copy).records)
    assert (result.added, result.skipped) == (2, 3)  # only the appended lines, the third oat milk among them
    assert [t.text for t in memory.turns()].count("buy oat milk") == 3
    [conversation] = memory.conversations()  # the appended lines joined the file's conversation
    assert conversation["turns"] == 5


def test_timed_records_keep_the_content_key_stores_already_hold():
    """Existing stores de-duplicate by these keys: the key of a timed record must never change."""
    from memory.turn import content_key

    assert content_key("c1", "user", 1_700_000_000.123456, "Héllo ✓") == \
        "54a65013c1667d7c29e7db80ef91de2d859f4fb9186fbdebba489c46571d1753"  # as memchat has always made it


def _chatgpt_export(path, messages: list[tuple[str, str]], conversation_id: str = "conv-long") -> None:
    mapping, parent = {}, None
    for n, (role, body) in enumerate(messages):
        node = f"m{n}"
        mapping[node] = {"id": node, "parent": parent, "children": [], "message": {
            "id": node, "author": {"role": role}, "create_time": 1_714_550_400 + n, "content": {"parts": [body]}}}
        if parent:
            mapping[parent]["children"] = [node]
        parent = node
    path.write_text(json.dumps([{"title": "A pasted log", "id": conversation_id, "current_node": parent, "mapping": mapping}]))


# A pasted log: long in characters, mostly indentation, so embedding it stays quick in a test.
LONG_LOG = "build log start\n" + " " * 150_000 + "\nbuild finished: 3 warnings"


def test_a_long_message_is_stored_and_one_too_long_is_left_out_and_named(memory, tmp_path):
    """#24: one message over 100,000 characters rejected the whole ChatGPT export."""
    path = tmp_path / "conversations.json"
    _chatgpt_export(path, [("user", "Why does my build warn?"), ("user", LONG_LOG), ("assistant", "x" * (MAX_TURN_CHARS + 1)),
                           ("assistant", "Two of the warnings are deprecations.")])
    parsed = read_records(path)
    assert [r.text for r in parsed.records] == ["Why does my build warn?", LONG_LOG, "Two of the warnings are deprecations."]
    [left] = parsed.left_out
    assert left.where == f"{path}: conversation 0 (conv-long), message m2" and left.characters == MAX_TURN_CHARS + 1
    assert f"{MAX_TURN_CHARS + 1:,} characters" in str(left)
    assert memory.remember_many(parsed.records).added == 3
    assert LONG_LOG in [t.text for t in memory.turns()]
