"""Hostile files and text (#12), driven by hypothesis: JSONL, ChatGPT-export, Claude-export (#25) and
LoCoMo imports and the CLI's text checks get broken, huge, deeply nested, cyclic and mis-encoded
input, and a Claude export may come zipped, whole or damaged. Every case
ends in records that store cleanly (less the messages too long to store, each named) or in one
BadInput line naming the file (and the record, where there is one): never a traceback, never a
half-imported file.

The suite runs MEMCHAT_FUZZ_CASES cases per test (default 150); `make fuzz` runs 10,000.
"""
from __future__ import annotations

import io
import json
import os
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memory.errors import BadInput
from memory.io import read_records
from memory.memory import Memory
from memory.turn import MAX_TURN_CHARS, validate_text

CASES = int(os.environ.get("MEMCHAT_FUZZ_CASES", "150"))
FUZZ = settings(max_examples=CASES, deadline=None, derandomize="MEMCHAT_FUZZ_CASES" not in os.environ,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])

# Keys the readers look for, so generated objects reach their deeper paths, and any others.
KEYS = st.sampled_from([
    "text", "role", "created_at", "meta", "id", "conversation_id", "status", "backend", "model", "tokens",
    "mapping", "current_node", "parent", "children", "message", "author", "content", "parts", "create_time",
    "title", "conversation", "session_1", "session_2", "session_1_date_time", "session_x", "speaker",
    "blip_caption", "sample_id", "uuid", "name", "chat_messages", "sender", "type", "attachments", "extracted_content",
    "file_name", "files", "parent_message_uuid", "current_leaf_message_uuid", "updated_at"]) | st.text(max_size=8)
SCALARS = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
           | st.sampled_from(["user", "assistant", "ok", "failed", "2024-05-01T10:00:00Z", "1:56 pm on 8 May, 2023",
                              "a", "b", "c", "\ud800", "x\x00y", "9" * 400]))
# Text a turn holds only at the import limit, and text past it (left out, never the whole file).
LONG = st.sampled_from(["long " * 30_000, "y" * (MAX_TURN_CHARS + 1)])
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=6),
                      max_leaves=40)


def _maybe(value, strategy=VALUES):
    """A plausible value, or anything at all."""
    return st.one_of(st.just(value), strategy)


@st.composite
def jsonl_files(draw) -> str:
    lines = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.integers(0, 9))
        if kind == 0:
            lines.append(draw(st.text(max_size=60)))  # not JSON at all
        elif kind == 1:
            lines.append(json.dumps(draw(VALUES)))
        else:
            record = {"text": draw(_maybe("I moved to Lisbon in May.", VALUES | LONG)), "role": draw(_maybe("user")),
                      "created_at": draw(_maybe("2024-05-01T10:00:00Z")), "conversation_id": draw(_maybe("c1"))}
            record.update(draw(st.dictionaries(KEYS, VALUES, max_size=3)))
            lines.append(json.dumps(record))
    return "\n".join(lines)


@st.composite
def chatgpt_files(draw) -> str:
    conversations = []
    for _ in range(draw(st.integers(0, 3))):
        ids = ["a", "b", "c", "d"]
        mapping = {}
        for node in draw(st.lists(st.sampled_from(ids), unique=True, max_size=4)):
            mapping[node] = {
                "id": node, "parent": draw(st.none() | st.sampled_from(ids + ["zz"]) | VALUES),
                "children": draw(st.lists(st.sampled_from(ids), max_size=2)),
                "message": draw(_maybe({"id": node, "author": {"role": draw(_maybe("user"))},
                                        "content": {"parts": draw(_maybe(["We met at the harbour."],
                                                                          VALUES | st.lists(LONG, max_size=1)))},
                                        "create_time": draw(_maybe(1_700_000_000.5))})),
            }
        conversation = {"title": draw(_maybe("Trip")), "id": draw(_maybe("conv-1")), "mapping": draw(_maybe(mapping)),
                        "current_node": draw(st.none() | st.sampled_from(ids) | VALUES),
                        "create_time": draw(_maybe(1_700_000_000))}
        conversations.append(draw(_maybe(conversation)))
    return json.dumps(conversations)


@st.composite
def claude_files(draw) -> str:
    """Plausible exports in which, here and there, one field is anything at all."""
    def spoilt(obj: dict, extra=VALUES) -> dict:
        if draw(st.integers(0, 3)) == 1:  # one object in four or so gets one field replaced
            obj[draw(st.sampled_from(sorted(obj)))] = draw(extra)
        return obj

    ids = ["u1", "u2", "u3", "u4"]
    conversations = []
    for _ in range(draw(st.integers(0, 3))):
        messages = []
        for uuid in draw(st.lists(st.sampled_from(ids), max_size=4)):  # repeats: duplicate uuids
            blocks = [spoilt({"type": draw(st.sampled_from(["text", "thinking", "tool_use"])), "text": "I keep bees."},
                             VALUES | LONG) for _ in range(draw(st.integers(0, 2)))]
            attachments = [spoilt({"file_name": draw(st.sampled_from(["", "hive-log.txt"])),
                                   "extracted_content": "12 May: swarm caught"}, VALUES | LONG)
                           for _ in range(draw(st.integers(0, 1)))]
            message = {"uuid": uuid, "sender": draw(st.sampled_from(["human", "assistant", "system"])),
                       "text": draw(st.sampled_from(["", "I keep bees in the garden."])), "content": blocks,
                       "created_at": draw(st.sampled_from(["2025-06-02T08:14:04.120000Z", "2025-06-02T10:14:04+02:00"])),
                       "attachments": attachments, "files": [{"file_name": "IMG_1.jpeg"}]}
            if draw(st.booleans()):  # newer exports name each message's parent: trees, branches, cycles
                message["parent_message_uuid"] = draw(st.sampled_from(ids + ["00000000-0000-4000-8000-000000000000"]))
            messages.append(spoilt(message, VALUES | LONG))
        conversation = {"uuid": draw(st.sampled_from(["5b0e7a7c", "0c6f4a11"])), "name": draw(st.sampled_from(["", "Bees"])),
                        "created_at": "2025-06-02T08:14:03Z", "updated_at": "2025-06-02T09:00:00Z",
                        "chat_messages": messages}
        if draw(st.booleans()):
            conversation["current_leaf_message_uuid"] = draw(st.sampled_from(ids))
        conversations.append(spoilt(conversation))
    return json.dumps(conversations)


@st.composite
def locomo_files(draw) -> str:
    samples = []
    for _ in range(draw(st.integers(0, 3))):
        turns = [draw(_maybe({"speaker": draw(_maybe("Caroline")), "text": draw(_maybe("I adopted a dog.", VALUES | LONG)),
                              "dia_id": "D1:1", "blip_caption": draw(st.none() | VALUES)}))
                 for _ in range(draw(st.integers(0, 3)))]
        conversation = {"speaker_a": "Caroline", "session_1": turns,
                        "session_1_date_time": draw(_maybe("1:56 pm on 8 May, 2023"))}
        conversation.update(draw(st.dictionaries(KEYS, VALUES, max_size=2)))
        samples.append(draw(_maybe({"sample_id": draw(_maybe("conv-26")), "conversation": conversation})))
    return json.dumps(samples)


@st.composite
def mangled(draw, texts) -> bytes:
    """A file's bytes: as written, truncated, with invalid UTF-8 spliced in, or nested past any limit."""
    raw = draw(texts).encode("utf-8", "surrogatepass")
    how = draw(st.integers(0, 9))
    if how == 0 and raw:
        raw = raw[: draw(st.integers(0, len(raw) - 1))]
    elif how == 1:
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00", b"\xef\xbb\xbf"])) + raw[at:]
    elif how == 2:
        depth = draw(st.sampled_from([100, 5_000, 200_000]))
        raw = b"[" * depth + b"]" * depth if draw(st.booleans()) else b'{"text": ' + b"[" * depth + b"]" * depth + b"}"
    elif how == 3:  # the export's zip as downloaded, or one cut short, or one without the file
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w", draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))) as out:
            out.writestr(draw(st.sampled_from(["conversations.json", "data/conversations.json", "users.json"])), raw)
        raw = archive.getvalue()
        if draw(st.integers(0, 3)) == 1:
            raw = raw[: draw(st.integers(0, len(raw)))]
    return raw


@pytest.fixture(scope="module")
def store(tmp_path_factory, embedder):
    with Memory(tmp_path_factory.mktemp("fuzz-store"), embedder) as memory:
        yield memory


def _import_or_reject(memory: Memory, path, fmt: str) -> None:
    """The property: a whole file stored (less what is too long, each named), or a one-line
    rejection naming it, and nothing stored."""
    before = len(memory.turns())
    try:
        _, records, left_out = read_records(path, fmt)
    except BadInput as exc:
        message = str(exc)
        assert str(path) in message or "unknown import format" in message, message
        assert "\n" not in message or path.suffix != ".claude", message  # one line (checked for the newest reader)
        assert len(memory.turns()) == before
        return
    for record in records:
        assert validate_text(record.text, MAX_TURN_CHARS) == record.text
    for item in left_out:  # too long, or (a Claude message) nothing to store: each named with a reason
        assert item.where.startswith(str(path)) and (item.characters > MAX_TURN_CHARS or item.reason)
        assert "\n" not in str(item) or path.suffix != ".claude"
    vectors = np.random.default_rng(len(records)).normal(size=(len(records), memory.embedder.dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    result = memory.remember_many(records, vectors=vectors)  # must not fail: the file was validated whole
    assert result.added + result.skipped == len(records)


@pytest.mark.parametrize("fmt, files", [("jsonl", jsonl_files()), ("chatgpt", chatgpt_files()),
                                        ("claude", claude_files()), ("locomo", locomo_files())])
def test_imports_end_in_records_or_a_named_rejection(fmt, files, store, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"fuzz-{fmt}")

    @FUZZ
    @given(raw=mangled(files), detect=st.booleans())
    def case(raw: bytes, detect: bool) -> None:
        path = folder / f"export.{fmt}"
        path.write_bytes(raw)
        _import_or_reject(store, path, None if detect else fmt)

    case()


@FUZZ
@given(text=st.text() | st.binary().map(lambda b: b.decode("utf-8", "surrogateescape")) | st.just("x" * 100_001))
def test_text_arguments_are_stored_or_refused_in_one_line(text):
    """What argv and stdin hand memchat (undecodable bytes arrive as lone surrogates)."""
    try:
        assert validate_text(text) == text
    except BadInput as exc:
        assert "\n" not in str(exc) and str(exc)
