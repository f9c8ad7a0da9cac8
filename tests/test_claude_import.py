"""Claude's data export (#25): conversations.json or the downloaded .zip, read like ChatGPT's export.

tests/data/claude-export.json is written by hand after the shapes public tools show (see
docs/claude-export.md): a newer conversation (content blocks, thinking, a web search, an edited
message that left a branch behind, a pasted text as a nameless attachment, an image-only message),
an older untitled one (only `text`, a placeholder in a reply, a text file attached, a time with an
offset) and a conversation never used.
"""
from __future__ import annotations

import dataclasses
import json
import zipfile
from datetime import datetime, timezone

import pytest

from assistant.cli import main
from memory import export_zip
from memory.errors import BadInput
from memory.io import export_jsonl, read_records
from memory.memory import Memory
from memory.turn import MAX_TURN_CHARS
from tests.conftest import REPO

EXPORT = REPO / "tests" / "data" / "claude-export.json"
TRIP, BOILER = "5b0e7a7c-3f0e-4c59-9a77-2f1c2d4e6a01", "0c6f4a11-8d1e-4b7a-b3b0-6a9e2e5d7c02"


def _utc(*parts) -> float:
    return datetime(*parts, tzinfo=timezone.utc).timestamp()


# Every turn the fixture holds, as memchat must store it: (conversation, role, text, time, message uuid).
EXPECTED = [
    (TRIP, "user", "I'm flying to Ísafjörður on 14 June. What should I pack? Ég tala smá íslensku 🙂",
     _utc(2025, 6, 2, 8, 14, 4, 120000), "019d8248-31f4-7a84-bfca-23c88f2618e0"),
    (TRIP, "assistant", "Pack layers: a waterproof shell, a fleece and wool socks. June highs in the Westfjords "
     "are around 9 °C.", _utc(2025, 6, 2, 8, 14, 15, 612044), "019d8248-31f4-7cc3-8a69-81f47ce714da"),
    (TRIP, "user", "Is the boat to Hornstrandir running by mid-June?\n\n[attached text]\nVesturferðir timetable 2025\n"
     "15 June – 31 August: daily 09:00 from Ísafjörður to Hesteyri", _utc(2025, 6, 2, 8, 25, 10, 250000),
     "019d824e-0a31-7b42-a1c9-5e0d3f4b2a10"),
    (TRIP, "assistant", "Yes: the timetable you pasted shows daily sailings from 15 June, so book the 15th or later.",
     _utc(2025, 6, 2, 8, 25, 14, 870512), "019d824e-0a31-7f00-8e2b-c4a1d9e6f511"),
    (TRIP, "assistant", "That jacket looks warm enough; add waterproof trousers for the boat.",
     _utc(2025, 6, 2, 8, 31, 46, 998003), "019d8250-77aa-7e55-8f10-2c3b4a5d6e72"),
    (BOILER, "user", "Draft a note to my landlord: the boiler in flat 3 has failed twice since January.\n\n"
     "[attached boiler-log.txt]\n12 Jan: no hot water\n2 Mar: pilot light out", _utc(2024, 3, 9, 19, 2, 12, 104417),
     "7a1f5c3e-2b44-4e8a-9d61-0f2e3c4b5a61"),
    (BOILER, "assistant", "Here is a short note:\n\nDear Mr Okafor, the boiler in flat 3 failed on 12 January and "
     "again on 2 March. Please arrange a repair.\n\nI kept it brief and factual.", _utc(2024, 3, 9, 19, 2, 40, 500000),
     "7a1f5c3e-2b44-4e8a-9d61-0f2e3c4b5a62"),  # 20:02:40.5+01:00
    (BOILER, "user", "Thanks. Добавь, пожалуйста, дату: 9 марта.", _utc(2024, 3, 9, 19, 5, 0, 1),
     "7a1f5c3e-2b44-4e8a-9d61-0f2e3c4b5a63"),
    (BOILER, "assistant", "Готово: «9 марта 2024» is now under the greeting.", _utc(2024, 3, 9, 19, 5, 31, 250000),
     "7a1f5c3e-2b44-4e8a-9d61-0f2e3c4b5a64"),
]
CONVERSATIONS = {  # id: (title, created_at, updated_at, turns)
    TRIP: ("Ísafjörður trip 🧭 — packing", _utc(2025, 6, 2, 8, 14, 3, 512345), _utc(2025, 6, 2, 8, 31, 47, 1200), 5),
    BOILER: ("", _utc(2024, 3, 9, 19, 2, 11), _utc(2024, 3, 9, 19, 5, 31, 250000), 4),
}
IMAGE_ONLY = "019d8250-77aa-7c01-b3d2-9f8e7d6c5b41"


def _stored(memory) -> list[tuple]:
    return [(t.conversation_id, t.role, t.text, t.created_at, t.meta["message_id"]) for t in memory.turns()]


def _conversations(memory) -> dict:
    return {c["id"]: (c["title"], c["created_at"], c["updated_at"], c["turns"]) for c in memory.conversations()}


def test_every_field_of_every_message_and_conversation_comes_in(memory):
    parsed = read_records(EXPORT)
    assert parsed.format == "claude"
    result = memory.remember_many(parsed.records)
    assert (result.added, result.skipped) == (len(EXPECTED), 0)
    assert sorted(_stored(memory), key=lambda t: t[3]) == sorted(EXPECTED, key=lambda t: t[3])
    turns = memory.turns()
    assert {t.meta["source"] for t in turns} == {"claude"} and {t.status for t in turns} == {"ok"}
    assert all(t.backend is None and t.model is None and t.tokens is None and t.pinned_at is None for t in turns)
    assert _conversations(memory) == CONVERSATIONS  # the unused conversation stores nothing
    [left] = parsed.left_out  # the image-only message: named, nothing of it stored
    assert left.where == f"{EXPORT}: conversation 0 ({TRIP}), message {IMAGE_ONLY}" and "no text" in str(left)
    assert left.to_json()["reason"].startswith("no text to store")
    text = " ".join(t.text for t in turns)
    for absent in ("ABANDONED", "WEB-PAGE-TEXT", "Checking Westfjords", "not supported", "Viewing artifacts",
                   "IMG_2041"):  # the edited-away branch, a tool result, thinking, placeholders, a file name
        assert absent not in text
    [hit] = memory.recall("when does the boat to Hornstrandir sail", k=1)
    assert hit.turn.meta["message_id"] in ("019d824e-0a31-7b42-a1c9-5e0d3f4b2a10", "019d824e-0a31-7f00-8e2b-c4a1d9e6f511")


def test_importing_the_export_again_adds_nothing_and_a_later_export_only_what_is_new(memory, tmp_path):
    memory.remember_many(read_records(EXPORT).records)
    again = memory.remember_many(read_records(EXPORT).records)
    assert (again.added, again.skipped) == (0, len(EXPECTED))
    later = json.loads(EXPORT.read_text())  # the next export: the conversation went on, and was renamed
    later[1]["name"] = "Boiler letter"
    later[1]["chat_messages"].append({"uuid": "7a1f5c3e-2b44-4e8a-9d61-0f2e3c4b5a65", "text": "The repair is booked "
                                      "for Tuesday.", "sender": "human", "created_at": "2024-03-12T08:00:00.000000Z",
                                      "attachments": [], "files": []})
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps(later, ensure_ascii=False))
    result = memory.remember_many(read_records(path).records)
    assert (result.added, result.skipped) == (1, len(EXPECTED))
    assert _conversations(memory)[BOILER][3] == 5 and memory.stats()["turns"] == len(EXPECTED) + 1


def test_export_then_import_gives_the_same_turns_and_conversations(memory, tmp_path, embedder):
    memory.remember_many(read_records(EXPORT).records)
    path = tmp_path / "memchat.jsonl"
    export_jsonl(memory, path)
    with Memory(tmp_path / "fresh", embedder) as fresh:
        assert fresh.remember_many(read_records(path).records).added == len(EXPECTED)
        assert [dataclasses.asdict(t) for t in fresh.turns()] == [dataclasses.asdict(t) for t in memory.turns()]
        assert _conversations(fresh) == CONVERSATIONS
        assert fresh.remember_many(read_records(EXPORT).records).added == 0  # and the Claude file adds nothing to it


def test_claudes_file_and_chatgpts_file_are_told_apart(tmp_path):
    """Both are a conversations.json holding a list of conversations."""
    chatgpt = REPO / "data" / "chatgpt-sample.json"
    assert read_records(chatgpt).format == "chatgpt" and read_records(EXPORT).format == "claude"
    for path, wrong, says in [(EXPORT, "chatgpt", "no 'mapping'"), (chatgpt, "claude", "no 'chat_messages'")]:
        with pytest.raises(BadInput, match=f"conversation 0: {says}"):
            read_records(path, wrong)


def _zip(path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def test_the_downloaded_zip_is_read_as_its_conversations_json(tmp_path):
    """The export arrives as data-….zip holding users.json, projects and conversations.json."""
    path = tmp_path / "data-2025-06-03-09-12-44-batch-0000.zip"
    _zip(path, {"users.json": b'[{"uuid": "c1a9", "full_name": "A"}]', "projects/p1.json": b'{"docs": []}',
                "conversations.json": EXPORT.read_bytes()})
    from_zip, from_file = read_records(path), read_records(EXPORT)
    assert from_zip.format == "claude" and from_zip.records == from_file.records
    assert [str(item) for item in from_zip.left_out] == [str(item).replace(str(EXPORT), str(path))
                                                           for item in from_file.left_out]
    chatgpt = tmp_path / "chatgpt.zip"  # ChatGPT's export zip names its file the same
    _zip(chatgpt, {"conversations.json": (REPO / "data" / "chatgpt-sample.json").read_bytes()})
    assert read_records(chatgpt).format == "chatgpt"


def test_a_zip_whose_conversations_json_is_over_the_limit_is_refused_in_one_line(tmp_path):
    path = tmp_path / "export.zip"
    data = EXPORT.read_bytes()
    _zip(path, {"conversations.json": data})
    assert export_zip.conversations_json(path, limit=len(data)) == data  # at the limit: read
    with pytest.raises(BadInput, match=rf"unpacks to {len(data):,} bytes, over the 1,000 read from a zip; unzip it "
                                       "and import conversations.json$") as caught:
        export_zip.conversations_json(path, limit=1000)
    assert "\n" not in str(caught.value)
    assert export_zip.MAX_MEMBER_BYTES == 1024 ** 3  # what read_records passes


def test_a_zip_whose_header_understates_the_size_is_refused_not_read_past_it(tmp_path):
    """The central directory says 100 bytes; the member unpacks to the whole export."""
    path = tmp_path / "export.zip"
    _zip(path, {"conversations.json": EXPORT.read_bytes()})
    raw = bytearray(path.read_bytes())
    central = raw.index(b"PK\x01\x02")
    raw[central + 24:central + 28] = (100).to_bytes(4, "little")  # uncompressed size
    path.write_bytes(bytes(raw))
    with pytest.raises(BadInput, match="cannot read conversations.json from the zip .*Bad CRC-32") as caught:
        export_zip.conversations_json(path, limit=1000)
    assert "\n" not in str(caught.value)


def test_only_conversations_json_is_read_from_a_zip_full_of_images(tmp_path):
    """A ChatGPT export is mostly images: the rest of the zip is never read into memory."""
    import os
    import tracemalloc

    path = tmp_path / "chatgpt-export.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("conversations.json", (REPO / "data" / "chatgpt-sample.json").read_bytes())
        for n in range(4):
            archive.writestr(f"file-{n}.png", os.urandom(8 * 1024 ** 2))
    assert path.stat().st_size > 32 * 1024 ** 2
    tracemalloc.start()
    try:
        imported = read_records(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert imported.format == "chatgpt" and imported.records
    assert peak < 4 * 1024 ** 2, f"{peak:,} bytes held while reading a {path.stat().st_size:,}-byte zip"


@pytest.mark.parametrize("members, says", [
    ({"users.json": b"[]"}, "holds no conversations.json"),
    (None, "a damaged zip"),
])
def test_a_zip_that_is_no_export_is_refused_in_one_line(tmp_path, members, says):
    path = tmp_path / "export.zip"
    if members is None:
        _zip(path, {"conversations.json": EXPORT.read_bytes()})
        path.write_bytes(path.read_bytes()[:200])  # a download cut short
    else:
        _zip(path, members)
    with pytest.raises(BadInput, match=says) as caught:
        read_records(path)
    assert str(caught.value).startswith(str(path)) and "\n" not in str(caught.value)


def _edit(change):
    def edited():
        data = json.loads(EXPORT.read_text())
        change(data)
        return json.dumps(data)
    return edited


def _cycle(data):
    first, second = data[0]["chat_messages"][:2]
    first["parent_message_uuid"] = second["uuid"]
    for message in data[0]["chat_messages"][2:]:
        message["parent_message_uuid"] = first["uuid"]  # every message is someone's parent


@pytest.mark.parametrize("content, format_, says", [
    (lambda: "not json at all", "claude", "line 1: invalid JSON"),
    (lambda: EXPORT.read_text()[:-40], None, "invalid JSON"),
    (lambda: json.dumps({"chat_messages": []}), "claude", "a Claude export is a JSON list of conversations"),
    (_edit(lambda d: d[1].pop("chat_messages")), None, "conversation 1: no 'chat_messages' list"),
    (_edit(lambda d: d[1].pop("uuid")), None, "conversation 1: the conversation's uuid must be a string"),
    (_edit(lambda d: d[0].update(created_at="yesterday")), None, "conversation 0: bad created_at"),
    (_edit(lambda d: d[1]["chat_messages"].__setitem__(2, "hello")), None, f"conversation 1 \\({BOILER}\\), message 2: "
     "not an object"),
    (_edit(lambda d: d[1]["chat_messages"][2].update(created_at="9 March")), None,
     f"message 7a1f5c3e-2b44-4e8a-9d61-0f2e3c4b5a63: bad created_at"),
    (_edit(lambda d: d[1]["chat_messages"][2].pop("created_at") and d[1].pop("created_at")), None,
     "no created_at, and none for its conversation"),
    (_edit(lambda d: d[1]["chat_messages"][0].update(sender=None)), None, "sender must be"),
    (_edit(lambda d: d[0]["chat_messages"][0].update(content="hello")), None, "content must be a list of blocks"),
    (_edit(lambda d: d[1]["chat_messages"][0].update(text=["a"])), None, "text must be a string"),
    (_edit(lambda d: d[1]["chat_messages"][0]["attachments"][0].update(extracted_content=7)), None,
     "extracted_content must be a string"),
    (_edit(lambda d: d[1]["chat_messages"][0].update(text="nul \x00 in it")), None, "contains a NUL character"),
    (_edit(_cycle), None, f"conversation 0 \\({TRIP}\\): .*cycle"),
])
def test_a_bad_file_is_refused_whole_naming_where_and_why(memory, tmp_path, content, format_, says):
    path = tmp_path / "conversations.json"
    path.write_text(content())
    with pytest.raises(BadInput, match=says) as caught:
        read_records(path, format_)
    assert str(caught.value).startswith(str(path)) and "\n" not in str(caught.value)
    assert memory.stats()["turns"] == 0


def test_the_branch_named_as_current_is_kept_and_other_senders_are_named(tmp_path):
    """A file that names its current leaf (as claude.ai's own conversation view does) is followed
    to it, even where a newer branch exists; a sender memchat has no role for is left out, named."""
    data = json.loads(EXPORT.read_text())
    data[0]["current_leaf_message_uuid"] = "019d824b-e17a-7d10-9c1e-0b5f1a7e3c44"  # the edited-away reply
    data[1]["chat_messages"][3]["sender"] = "system"
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps(data))
    parsed = read_records(path)
    trip = [r.text for r in parsed.records if r.conversation_id == TRIP]
    assert [t.split()[0] for t in trip] == ["I'm", "Pack", "ABANDONED-QUESTION", "ABANDONED-REPLY"]
    assert [str(item).split(": ", 1)[1] for item in parsed.left_out] == [
        f"conversation 1 ({BOILER}), message 7a1f5c3e-2b44-4e8a-9d61-0f2e3c4b5a64: sender system is neither human "
        "nor assistant"]


def test_an_attachment_too_long_for_the_turn_is_left_out_and_its_message_kept(tmp_path):
    data = json.loads(EXPORT.read_text())
    attachment = data[1]["chat_messages"][0]["attachments"][0]
    attachment["extracted_content"] = "log line\n" * (MAX_TURN_CHARS // 9 + 1)
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps(data))
    parsed = read_records(path)
    first = next(r for r in parsed.records if r.conversation_id == BOILER)
    assert first.text == "Draft a note to my landlord: the boiler in flat 3 has failed twice since January."
    named = [item for item in parsed.left_out if "boiler-log.txt" in item.where]
    assert len(named) == 1 and named[0].characters == len(attachment["extracted_content"].strip())
    assert "more than the turn has room for beside its message" in str(named[0])


def test_memchat_memory_import_takes_the_zip_and_says_what_it_left_out(data_dir, tmp_path, capsys):
    path = tmp_path / "claude-data.zip"
    _zip(path, {"conversations.json": EXPORT.read_bytes()})
    assert main(["memory", "import", str(path), "--json", "--data-dir", str(data_dir)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["format"], out["added"], out["skipped"]) == ("claude", len(EXPECTED), 0)
    assert [item["where"].rsplit(" ", 1)[1] for item in out["left_out"]] == [IMAGE_ONLY]
    assert main(["memory", "import", str(path), "--data-dir", str(data_dir)]) == 0
    printed = capsys.readouterr().out
    assert f"imported 0 turns from {path} (claude)" in printed and f"{len(EXPECTED)} already stored" in printed
    assert f"left out {path}: conversation 0 ({TRIP}), message {IMAGE_ONLY}: no text to store" in printed
    with pytest.raises(SystemExit):
        main(["memory", "import", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "Claude conversations.json" in help_text and "Settings → Privacy → Export data" in help_text
    assert ".zip as downloaded" in help_text


def test_the_fixture_holds_what_the_tests_say_it_holds():
    """The shapes each test relies on, so an edit of the fixture cannot quietly empty a test."""
    data = json.loads(EXPORT.read_text())
    new, old, unused = data
    kinds = {block["type"] for m in new["chat_messages"] for block in m["content"]}
    assert kinds == {"text", "thinking", "tool_use", "tool_result"}
    assert all("content" not in m and "parent_message_uuid" not in m for m in old["chat_messages"])
    assert new["name"] and old["name"] == "" and unused["chat_messages"] == []
    assert sum(bool(m["attachments"]) for c in data for m in c["chat_messages"]) == 2
    parents = [m["parent_message_uuid"] for m in new["chat_messages"]]
    assert len(parents) - len(set(parents)) == 1  # one message was edited: two children of one parent
