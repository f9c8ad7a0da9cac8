"""Export and import: memchat JSONL (lossless), ChatGPT `conversations.json`, LoCoMo JSON.

A file is read and checked whole before anything is stored: a malformed record rejects the file
with its name, line or record, and the reason, and nothing of it is stored. Storing then goes
through Memory.remember_many, which embeds and commits in batches and skips records already stored
(same content key), so importing a file again — after a crash or not — adds only what is missing.
"""
from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path

from memory.runtime.private_files import make_private
from memory.errors import BadInput
from memory.profiles import validate_profile
from memory.turn import NewTurn, from_iso, validate_role, validate_text

FORMATS = ("jsonl", "chatgpt", "locomo")
STATUSES = ("ok", "failed", "stopped")
# What a malformed record raises on its way through a reader (a string where a dict belongs, a
# number that is not one, JSON nested past Python's recursion limit): turned into a rejection
# naming the record, never a traceback.
MALFORMED = (TypeError, ValueError, AttributeError, KeyError, IndexError, OverflowError, RecursionError)


class _Record:
    """`with _Record(where):` one record's parsing; any malformation becomes BadInput naming it."""

    def __init__(self, where: str):
        self.where = where

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, tb) -> bool:
        if kind is not None and issubclass(kind, MALFORMED):
            raise BadInput(f"{self.where}: malformed record ({kind.__name__}: {str(exc)[:120]})") from None
        if kind is not None and issubclass(kind, BadInput) and not str(exc).startswith(self.where):
            raise BadInput(f"{self.where}: {exc}") from None  # a check deeper down that did not say where
        return False


def _stored_text(value, name: str, optional: bool = True) -> str | None:
    """A string field that goes into SQLite as is: it must be text SQLite can hold."""
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise BadInput(f"{name} must be a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadInput(f"{name} is not valid UTF-8") from None
    if "\x00" in value:
        raise BadInput(f"{name} contains a NUL character")
    return value


def _timestamp(value: float) -> float:
    """Epoch seconds a calendar can show (year 1 to 9999); NaN and infinities are not times."""
    value = float(value)
    if not -62_000_000_000 < value < 253_000_000_000:
        raise BadInput(f"created_at {value!r} is not a date")
    return value


# -- export ------------------------------------------------------------------------------------
def export_jsonl(memory, path: Path, progress=None, profile: str | None = None) -> int:
    """Write every turn, oldest first, one JSON object per line; atomically (temp file + rename).
    Each line names `profile`, the profile the turns belong to, so an import can put them back."""
    path = Path(path)
    total = memory.stats()["turns"]
    tmp = path.with_name(path.name + ".tmp")
    count = 0
    with open(tmp, "w", encoding="utf-8") as out:
        make_private(tmp)  # an export is as personal as the store it came from
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
def read_records(path: Path, fmt: str | None = None) -> tuple[str, list[NewTurn]]:
    """Parse and validate a whole file; returns (format, records) or raises BadInput."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise BadInput(f"{path}: cannot read ({exc.strerror})") from None
    try:
        content = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(f"{path}: not valid UTF-8 at byte {exc.start}") from None
    fmt = fmt or _detect(path, content)
    reader = {"jsonl": _read_jsonl, "chatgpt": _read_chatgpt, "locomo": _read_locomo}.get(fmt)
    if reader is None:
        raise BadInput(f"unknown import format {fmt!r}; use one of: {', '.join(FORMATS)}")
    records = reader(path, content)
    if not records:
        raise BadInput(f"{path}: no turns found")
    return fmt, records


def _detect(path: Path, content: str) -> str:
    stripped = content.lstrip()
    if stripped.startswith("["):
        data = _parse_json(path, content)
        first = data[0] if data and isinstance(data[0], dict) else {}
        if "mapping" in first:
            return "chatgpt"
        if "conversation" in first:
            return "locomo"
        raise BadInput(f"{path}: a JSON list, but neither a ChatGPT export nor LoCoMo; use --format")
    return "jsonl"


def _stable_conversation_id(path: Path) -> str:
    return "import-" + hashlib.sha256(path.name.encode()).hexdigest()[:8]


def _read_jsonl(path: Path, content: str) -> list[NewTurn]:
    # Lines without created_at get the file's mtime (plus their line number in microseconds), so
    # re-importing the unchanged file yields the same content keys and adds nothing twice.
    base_time = path.stat().st_mtime
    default_cid = _stable_conversation_id(path)
    records = []
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
        with _Record(where):
            records.append(_record_from_object(obj, where, default_cid, base_time + number * 1e-6))
    return records


def _record_from_object(obj: dict, where: str, default_cid: str, default_time: float) -> NewTurn:
    try:
        text = validate_text(obj.get("text"))
        role = validate_role(obj.get("role", "user"))
        created = obj.get("created_at")
        if created is not None and not isinstance(created, str):
            raise BadInput(f"created_at must be an ISO 8601 date such as \"2024-05-01T09:30:00Z\", not {created!r:.40}")
        try:
            created_at = _timestamp(from_iso(created)) if created is not None else default_time
        except (TypeError, ValueError, OverflowError, AttributeError) as exc:
            raise BadInput(f"bad created_at ({exc})") from None
        meta = obj.get("meta") or {}
        if not isinstance(meta, dict):
            raise BadInput("meta must be a JSON object")
        _stored_text(json.dumps(meta, ensure_ascii=False), "meta")
        turn_id = obj.get("id")
        if turn_id is not None and not (type(turn_id) is int and 0 < turn_id < 2 ** 63):
            raise BadInput("id must be a positive integer")
        cid = obj.get("conversation_id") or default_cid
        cid = _stored_text(cid if isinstance(cid, str) else json.dumps(cid), "conversation_id")
        status = obj.get("status", "ok")
        if status not in STATUSES:
            raise BadInput(f"status must be one of: {', '.join(STATUSES)}")
        backend, model = _stored_text(obj.get("backend"), "backend"), _stored_text(obj.get("model"), "model")
        profile = obj.get("profile")
        if profile is not None:
            profile = validate_profile(profile)
    except BadInput as exc:
        raise BadInput(f"{where}: {exc}") from None
    tokens = obj.get("tokens")
    return NewTurn(text=text, role=role, conversation_id=cid, created_at=created_at, status=status,
                   backend=backend, model=model, tokens=tokens if type(tokens) is int and 0 <= tokens < 2 ** 63 else None,
                   meta=meta, id=turn_id, profile=profile)


def exported_profile(records: list[NewTurn], path: Path) -> str | None:
    """The one profile a memchat export names (None: it names none); a file naming several is refused."""
    named = sorted({r.profile for r in records if r.profile})
    if len(named) > 1:
        raise BadInput(f"{path} holds turns of profiles {', '.join(named)}; import it with --profile NAME to "
                       "choose where they go")
    return named[0] if named else None


def _read_chatgpt(path: Path, content: str) -> list[NewTurn]:
    """ChatGPT's data export: each conversation is a tree of messages; keep the branch the user
    last saw (current_node back to the root), user and assistant text only."""
    data = _parse_json(path, content)
    records = []
    if not isinstance(data, list):
        raise BadInput(f"{path}: a ChatGPT export is a JSON list of conversations")
    for n, conv in enumerate(data):
        where = f"{path}: conversation {n}"
        with _Record(where):
            records += _chatgpt_conversation(conv, n, where)
    return records


def _chatgpt_conversation(conv, n: int, where: str) -> list[NewTurn]:
    records = []
    if not isinstance(conv, dict) or not isinstance(conv.get("mapping"), dict):
        raise BadInput(f"{where}: no 'mapping' of messages")
    cid = conv.get("conversation_id") or conv.get("id") or f"chatgpt-{n}"
    cid = _stored_text(cid if isinstance(cid, str) else json.dumps(cid), "conversation id")
    title = conv.get("title")
    title = _stored_text(title, "title") if isinstance(title, str) else ""
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
    conv_time = _timestamp(conv.get("create_time") or 0)
    for i, node in enumerate(reversed(branch)):
        message = node.get("message") or {}
        role = (message.get("author") or {}).get("role")
        parts = (message.get("content") or {}).get("parts") or []
        body = "\n".join(p for p in parts if isinstance(p, str)).strip()
        if role not in ("user", "assistant") or not body:
            continue
        try:
            validate_text(body)
        except BadInput as exc:
            raise BadInput(f"{where}, message {message.get('id')}: {exc}") from None
        created = _timestamp(message.get("create_time") or (conv_time + i * 1e-3))
        meta = {"source": "chatgpt", "message_id": message.get("id")}
        _stored_text(json.dumps(meta, ensure_ascii=False), "message id")
        records.append(NewTurn(text=body, role=role, conversation_id=cid, created_at=created, meta=meta,
                               conversation_title=title))
    return records


def _parse_json(path: Path, content: str):
    try:
        return json.loads(content)
    except json.JSONDecodeError as exc:
        raise BadInput(f"{path}: line {exc.lineno}: invalid JSON ({exc.msg})") from None
    except RecursionError:
        raise BadInput(f"{path}: JSON nested too deeply to be a conversation export") from None


def _last_leaf(mapping: dict) -> str | None:
    leaves = [k for k, v in mapping.items() if isinstance(v, dict) and not v.get("children")]
    return leaves[-1] if leaves else None


def parse_locomo_date(value: str) -> float:
    """LoCoMo session dates look like '1:56 pm on 8 May, 2023'; taken as UTC."""
    moment = datetime.strptime(value.strip(), "%I:%M %p on %d %B, %Y")
    return moment.replace(tzinfo=timezone.utc).timestamp()


def _read_locomo(path: Path, content: str) -> list[NewTurn]:
    data = _parse_json(path, content)
    if not isinstance(data, list):
        raise BadInput(f"{path}: a LoCoMo file is a JSON list of samples")
    records = []
    for n, sample in enumerate(data):
        where = f"{path}: sample {n}"
        conversation = sample.get("conversation") if isinstance(sample, dict) else None
        if not isinstance(conversation, dict):
            raise BadInput(f"{where}: no 'conversation' object")
        with _Record(where):
            records.extend(locomo_turns(sample, where))
    return records


def locomo_turns(sample: dict, where: str = "LoCoMo sample") -> list[NewTurn]:
    """The turns of one LoCoMo sample: speaker in the text, image captions appended, session dates."""
    conversation = sample["conversation"]
    cid = sample.get("sample_id") or "locomo"
    cid = _stored_text(cid if isinstance(cid, str) else json.dumps(cid), "sample_id")
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
            body = f"{turn['speaker']}: {turn['text']}"
            if turn.get("blip_caption"):
                body += f" [shared an image: {turn['blip_caption']}]"
            meta = {"source": "locomo", "speaker": turn["speaker"], "dia_id": turn.get("dia_id"), "session": number}
            _stored_text(json.dumps(meta, ensure_ascii=False), "the turn's speaker or dia_id")
            records.append(NewTurn(
                text=validate_text(body), role="user", conversation_id=cid,
                created_at=start + i,  # one second apart keeps the session's order
                meta=meta,
            ))
    return records
