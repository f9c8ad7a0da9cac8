"""Export and import: memchat JSONL (lossless), ChatGPT's and Claude's `conversations.json` (or
the export's .zip), LoCoMo JSON.

A file is read and checked whole before anything is stored: a malformed record rejects the file
with its name, line or record, and the reason, and nothing of it is stored. A message longer than
a turn holds (MAX_TURN_CHARS) is no malformation: it is left out and named (LeftOut), the rest is
imported. Storing then goes through Memory.remember_many, which embeds and commits in batches and
skips records already stored (same content key), so importing a file again — after a crash or
not — adds only what is missing.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

from memory.runtime.private_files import make_private
from memory.errors import BadInput
from memory.claude_export import read_claude
from memory.export_zip import conversations_json, is_zip
from memory.import_checks import LeftOut, RecordCheck, fits, iso_time, parse_json, stored_text, timestamp
from memory.pins import check_pinnable
from memory.profiles import validate_profile
from memory.turn import MAX_TURN_CHARS, NewTurn, to_iso, validate_role, validate_text

FORMATS = ("jsonl", "chatgpt", "claude", "locomo")
STATUSES = ("ok", "failed", "stopped")


class ImportFile(NamedTuple):
    """What read_records found: the turns to store, and the messages too long to store."""

    format: str
    records: list[NewTurn]
    left_out: list[LeftOut]


# -- export ------------------------------------------------------------------------------------
def export_jsonl(memory, path: Path, progress=None, profile: str | None = None) -> int:
    """Write every conversation that has turns (`{"conversation": {id, title, created_at,
    updated_at}}`), then every turn, oldest first, one JSON object per line; atomically (temp file
    + rename). Each turn names `profile`, the profile it belongs to, so an import can put it back.
    Returns the number of turns."""
    path = Path(path)
    total = memory.stats()["turns"]
    tmp = path.with_name(path.name + ".tmp")
    count = 0
    with open(tmp, "w", encoding="utf-8") as out:
        make_private(tmp)  # an export is as personal as the store it came from
        for conv in sorted(memory.conversations(), key=lambda c: (c["created_at"], c["id"])):
            if conv["turns"]:  # an empty one is what a forget left: nothing of it to keep
                line = {"id": conv["id"], "title": conv["title"], "created_at": to_iso(conv["created_at"]),
                        "updated_at": to_iso(conv["updated_at"])}
                out.write(json.dumps({"conversation": line}, ensure_ascii=False) + "\n")
        for turn in memory.iter_turns():
            line = turn.to_json() if profile is None else {**turn.to_json(), "profile": profile}
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
            count += 1
            if progress and count % 1000 == 0:
                progress("exporting", count, total)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    return count


# -- import ------------------------------------------------------------------------------------
def read_records(path: Path, fmt: str | None = None) -> ImportFile:
    """Parse and validate a whole file; returns (format, records, left_out) or raises BadInput."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            zipped = is_zip(handle.read(4))
        # an export as it was downloaded: only its conversations.json is read, never the whole zip
        raw = conversations_json(path) if zipped else path.read_bytes()
    except OSError as exc:
        raise BadInput(f"{path}: cannot read ({exc.strerror})") from None
    try:
        content = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(f"{path}: not valid UTF-8 at byte {exc.start}") from None
    fmt = fmt or _detect(path, content)
    reader = {"jsonl": _read_jsonl, "chatgpt": _read_chatgpt, "claude": read_claude, "locomo": _read_locomo}.get(fmt)
    if reader is None:
        raise BadInput(f"unknown import format {fmt!r}; use one of: {', '.join(FORMATS)}")
    left_out: list[LeftOut] = []
    records = reader(path, content, left_out)
    if not records and not left_out:
        raise BadInput(f"{path}: no turns found")
    return ImportFile(fmt, records, left_out)


def _detect(path: Path, content: str) -> str:
    stripped = content.lstrip()
    if stripped.startswith("["):
        data = parse_json(path, content)
        first = data[0] if data and isinstance(data[0], dict) else {}
        if "mapping" in first:  # ChatGPT's and Claude's files share a name: their messages tell them apart
            return "chatgpt"
        if "chat_messages" in first:
            return "claude"
        if "conversation" in first:
            return "locomo"
        raise BadInput(f"{path}: a JSON list, but neither a ChatGPT export nor LoCoMo (nor a Claude export); "
                       "use --format")
    return "jsonl"


def _is_conversation(obj: dict) -> bool:
    """An export's conversation line, not a turn."""
    return isinstance(obj.get("conversation"), dict) and "text" not in obj


def _read_jsonl(path: Path, content: str, left_out: list[LeftOut]) -> list[NewTurn]:
    # A line without created_at is stored at the file's mtime (plus its line number in
    # microseconds, for the order), a guess; what identifies it is its occurrence among the file's
    # untimed lines of the same conversation, role and text (NewTurn.occurrence), and its default
    # conversation is named after the file's first turn. So a touched, copied, renamed or appended
    # file adds only lines it did not hold before, and appended lines join the same conversation.
    base_time = path.stat().st_mtime
    objects = []
    for number, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}: line {number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BadInput(f"{where}: invalid JSON ({exc.msg})") from None
        except RecursionError:
            raise BadInput(f"{where}: JSON nested too deeply") from None
        if not isinstance(obj, dict):
            raise BadInput(f"{where}: expected a JSON object")
        objects.append((number, where, obj))
    default_cid = _default_conversation(next((obj for _, _, obj in objects if not _is_conversation(obj)), {}))
    records, conversations, occurrences = [], {}, Counter()
    for number, where, obj in objects:
        with RecordCheck(where):
            if _is_conversation(obj):
                cid, info = _conversation_from_object(obj["conversation"])
                conversations[cid] = info
                continue
            if not fits(obj.get("text"), where, left_out):
                continue
            record = _record_from_object(obj, where, default_cid, base_time + number * 1e-6)
        if obj.get("created_at") is None:
            same = (record.conversation_id, record.role, record.text)
            record.occurrence = occurrences[same]
            occurrences[same] += 1
        records.append(record)
    for record in records:
        if record.conversation_id in conversations:
            (record.conversation_title, record.conversation_created_at,
             record.conversation_updated_at) = conversations[record.conversation_id]
    return records


def _default_conversation(first: dict) -> str:
    """The conversation of a file's lines that name none: named after its first turn's role and text."""
    role, text = first.get("role", "user"), first.get("text")
    named = json.dumps([role if isinstance(role, str) else None, text if isinstance(text, str) else None])
    return "import-" + hashlib.sha256(named.encode()).hexdigest()[:12]


def _conversation_from_object(data: dict) -> tuple[str, tuple[str, float, float]]:
    """An export's conversation line: its id, and (title, created_at, updated_at)."""
    try:
        cid = stored_text(data.get("id"), "the conversation's id", optional=False)
        title = stored_text(data.get("title") or "", "the conversation's title")
        return cid, (title, iso_time(data.get("created_at"), "the conversation's created_at"),
                     iso_time(data.get("updated_at"), "the conversation's updated_at"))
    except BadInput as exc:
        raise BadInput(f"conversation line: {exc}") from None


def _record_from_object(obj: dict, where: str, default_cid: str, default_time: float) -> NewTurn:
    try:
        text = validate_text(obj.get("text"), MAX_TURN_CHARS)
        role = validate_role(obj.get("role", "user"))
        created = obj.get("created_at")
        created_at = iso_time(created) if created is not None else default_time
        meta = obj.get("meta") or {}
        if not isinstance(meta, dict):
            raise BadInput("meta must be a JSON object")
        stored_text(json.dumps(meta, ensure_ascii=False), "meta")
        turn_id = obj.get("id")
        if turn_id is not None and not (type(turn_id) is int and 0 < turn_id < 2 ** 63):
            raise BadInput("id must be a positive integer")
        cid = obj.get("conversation_id") or default_cid
        cid = stored_text(cid if isinstance(cid, str) else json.dumps(cid), "conversation_id")
        status = obj.get("status", "ok")
        if status not in STATUSES:
            raise BadInput(f"status must be one of: {', '.join(STATUSES)}")
        backend, model = stored_text(obj.get("backend"), "backend"), stored_text(obj.get("model"), "model")
        profile = obj.get("profile")
        if profile is not None:
            profile = validate_profile(profile)
        pinned = obj.get("pinned_at")
        pinned_at = None if pinned is None else iso_time(pinned, "pinned_at")
        if pinned_at is not None:
            check_pinnable(role)
    except BadInput as exc:
        raise BadInput(f"{where}: {exc}") from None
    tokens = obj.get("tokens")
    return NewTurn(text=text, role=role, conversation_id=cid, created_at=created_at, status=status,
                   backend=backend, model=model, tokens=tokens if type(tokens) is int and 0 <= tokens < 2 ** 63 else None,
                   meta=meta, id=turn_id, profile=profile, pinned_at=pinned_at)


def exported_profile(records: list[NewTurn], path: Path) -> str | None:
    """The one profile a memchat export names (None: it names none); a file naming several is refused."""
    named = sorted({r.profile for r in records if r.profile})
    if len(named) > 1:
        raise BadInput(f"{path} holds turns of profiles {', '.join(named)}; import it with --profile NAME to "
                       "choose where they go")
    return named[0] if named else None


def _read_chatgpt(path: Path, content: str, left_out: list[LeftOut]) -> list[NewTurn]:
    """ChatGPT's data export: each conversation is a tree of messages; keep the branch the user
    last saw (current_node back to the root), user and assistant text only."""
    data = parse_json(path, content)
    records = []
    if not isinstance(data, list):
        raise BadInput(f"{path}: a ChatGPT export is a JSON list of conversations")
    for n, conv in enumerate(data):
        where = f"{path}: conversation {n}"
        with RecordCheck(where):
            records += _chatgpt_conversation(conv, n, where, left_out)
    return records


def _chatgpt_conversation(conv, n: int, where: str, left_out: list[LeftOut]) -> list[NewTurn]:
    records = []
    if not isinstance(conv, dict) or not isinstance(conv.get("mapping"), dict):
        raise BadInput(f"{where}: no 'mapping' of messages")
    cid = conv.get("conversation_id") or conv.get("id") or f"chatgpt-{n}"
    cid = stored_text(cid if isinstance(cid, str) else json.dumps(cid), "conversation id")
    title = conv.get("title")
    title = stored_text(title, "title") if isinstance(title, str) else ""
    mapping = conv["mapping"]
    node_id = conv.get("current_node") or _last_leaf(mapping)
    branch, visited = [], set()
    while node_id is not None:
        if not isinstance(node_id, str) or node_id in visited:  # parent links must end at a root
            raise BadInput(f"{where}: the parent links of message {node_id!r} form a cycle or are broken")
        visited.add(node_id)
        node = mapping.get(node_id)
        if not isinstance(node, dict):
            raise BadInput(f"{where}: message {node_id!r} is referenced but missing")
        branch.append(node)
        node_id = node.get("parent")
    conv_time = timestamp(conv.get("create_time") or 0)
    for i, node in enumerate(reversed(branch)):
        message = node.get("message") or {}
        role = (message.get("author") or {}).get("role")
        parts = (message.get("content") or {}).get("parts") or []
        body = "\n".join(p for p in parts if isinstance(p, str)).strip()
        if role not in ("user", "assistant") or not body:
            continue
        message_where = f"{where} ({cid}), message {message.get('id')}"
        if not fits(body, message_where, left_out):
            continue
        try:
            validate_text(body, MAX_TURN_CHARS)
        except BadInput as exc:
            raise BadInput(f"{message_where}: {exc}") from None
        created = timestamp(message.get("create_time") or (conv_time + i * 1e-3))
        meta = {"source": "chatgpt", "message_id": message.get("id")}
        stored_text(json.dumps(meta, ensure_ascii=False), "message id")
        records.append(NewTurn(text=body, role=role, conversation_id=cid, created_at=created, meta=meta,
                               conversation_title=title))
    return records


def _last_leaf(mapping: dict) -> str | None:
    leaves = [k for k, v in mapping.items() if isinstance(v, dict) and not v.get("children")]
    return leaves[-1] if leaves else None


def parse_locomo_date(value: str) -> float:
    """LoCoMo session dates look like '1:56 pm on 8 May, 2023'; taken as UTC."""
    moment = datetime.strptime(value.strip(), "%I:%M %p on %d %B, %Y")
    return moment.replace(tzinfo=timezone.utc).timestamp()


def _read_locomo(path: Path, content: str, left_out: list[LeftOut]) -> list[NewTurn]:
    data = parse_json(path, content)
    if not isinstance(data, list):
        raise BadInput(f"{path}: a LoCoMo file is a JSON list of samples")
    records = []
    for n, sample in enumerate(data):
        where = f"{path}: sample {n}"
        conversation = sample.get("conversation") if isinstance(sample, dict) else None
        if not isinstance(conversation, dict):
            raise BadInput(f"{where}: no 'conversation' object")
        with RecordCheck(where):
            records.extend(locomo_turns(sample, where, left_out))
    return records


def locomo_turns(sample: dict, where: str = "LoCoMo sample", left_out: list[LeftOut] | None = None) -> list[NewTurn]:
    """The turns of one LoCoMo sample: speaker in the text, image captions appended, session dates.
    A turn too long to store is noted in `left_out`; without one (an evaluation) it is refused.

    memchat's own sets in this format (data/make_assistant_set.py) are a person talking to an
    assistant, and name the assistant's speaker in `assistant_speaker`: those turns are stored as
    memchat's chat stores them, the assistant's with role "assistant" and no one's name in the text."""
    conversation = sample["conversation"]
    assistant = conversation.get("assistant_speaker")
    if assistant is not None and not isinstance(assistant, str):
        raise BadInput(f"{where}: assistant_speaker must be a speaker's name")
    cid = sample.get("sample_id") or "locomo"
    cid = stored_text(cid if isinstance(cid, str) else json.dumps(cid), "sample_id")
    sessions = sorted(
        (int(key.split("_")[1]), key) for key in conversation
        if key.startswith("session_") and key.count("_") == 1 and isinstance(conversation[key], list)
    )
    records = []
    for number, key in sessions:
        try:
            start = parse_locomo_date(conversation[f"{key}_date_time"])
        except (KeyError, ValueError) as exc:
            raise BadInput(f"{where}, {key}: bad or missing session date ({exc})") from None
        for i, turn in enumerate(conversation[key]):
            if not isinstance(turn, dict) or not turn.get("text") or not turn.get("speaker"):
                raise BadInput(f"{where}, {key} turn {i}: needs 'speaker' and 'text'")
            body = f"{turn['speaker']}: {turn['text']}" if assistant is None else str(turn["text"])
            if turn.get("blip_caption"):
                body += f" [shared an image: {turn['blip_caption']}]"
            if left_out is not None and not fits(body, f"{where}, {key} turn {i}", left_out):
                continue
            meta = {"source": "locomo", "speaker": turn["speaker"], "dia_id": turn.get("dia_id"), "session": number}
            stored_text(json.dumps(meta, ensure_ascii=False), "the turn's speaker or dia_id")
            records.append(NewTurn(
                text=validate_text(body, MAX_TURN_CHARS), role="assistant" if turn["speaker"] == assistant else "user",
                conversation_id=cid,
                created_at=start + i,  # one second apart keeps the session's order
                meta=meta,
            ))
    return records
