"""Export, import (memchat JSONL, ChatGPT, LoCoMo), de-duplication and crash safety."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time

import pytest

from memory.errors import BadInput
from memory.io import export_jsonl, read_records
from memory.memory import Memory
from tests.conftest import LOCOMO_MINI, MEMCHAT, REPO


def test_export_import_round_trip_is_lossless(memory, tmp_path, embedder):
    memory.remember("Héllo — unicode ✓ and \"quotes\"\nand a second line", conversation_id="c1", created_at=1_700_000_000.123456)
    memory.remember("assistant reply", role="assistant", conversation_id="c1", backend="local", model="smol", tokens=7,
                    meta={"usage": {"prompt": 3}})
    memory.remember("other chat", conversation_id="c2")
    first = tmp_path / "a.jsonl"
    export_jsonl(memory, first)
    with Memory(tmp_path / "other", embedder) as copy:
        result = copy.remember_many(read_records(first)[1])
        assert (result.added, result.skipped) == (3, 0)
        second = tmp_path / "b.jsonl"
        export_jsonl(copy, second)
    assert first.read_text() == second.read_text()
    lines = [json.loads(line) for line in first.read_text().splitlines()]
    assert {"id", "text", "role", "conversation_id", "created_at", "meta"} <= set(lines[0])
    assert lines[1]["meta"] == {"usage": {"prompt": 3}} and lines[1]["tokens"] == 7


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
    fmt, records = read_records(REPO / "data" / "chatgpt-sample.json")
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
    fmt, records = read_records(path)
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
