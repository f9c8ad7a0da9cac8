"""Claude's data export (claude.ai → Settings → Privacy → Export data): `conversations.json`, a JSON
list of conversations `{uuid, name, created_at, updated_at, chat_messages: [...]}`, each message
`{uuid, sender: "human" | "assistant", text, content: [blocks], created_at, attachments, files}`
(docs/claude-export.md: the format, the public sources it was checked against, the variants).

Read like ChatGPT's export: what the person and the assistant said, one turn per message, with its
time; the conversation's uuid as its id (so a re-import adds nothing) and its name as its title. A
malformed record rejects the file, naming the conversation and message; a message with nothing to
store (an image only) or from another sender is left out and named, as a message too long is.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from memory.errors import BadInput
from memory.import_checks import LeftOut, RecordCheck, fits, iso_time, parse_json, stored_text
from memory.turn import MAX_TURN_CHARS, NewTurn, validate_text

ROLES = {"human": "user", "assistant": "assistant"}
# What a client that could not show a tool call or artifact wrote into an assistant message's `text`
# in its place, and the thinking older exports carried inline in it: nobody said either.
_NOT_SAID = re.compile(
    r"\s*(?:```\s*(?:This block is not supported on your current device yet\.|Viewing artifacts created via "
    r"the Analysis Tool web feature preview isn['’]t yet supported on mobile\.)\s*```"
    r"|<antThinking>.*?</antThinking>)\s*", re.DOTALL)


def read_claude(path: Path, content: str, left_out: list[LeftOut]) -> list[NewTurn]:
    data = parse_json(path, content)
    if not isinstance(data, list):
        raise BadInput(f"{path}: a Claude export is a JSON list of conversations")
    records = []
    for n, conv in enumerate(data):
        where = f"{path}: conversation {n}"
        with RecordCheck(where):
            records += _conversation(conv, where, left_out)
    return records


def _conversation(conv, where: str, left_out: list[LeftOut]) -> list[NewTurn]:
    if not isinstance(conv, dict) or not isinstance(conv.get("chat_messages"), list):
        raise BadInput(f"{where}: no 'chat_messages' list of messages")
    cid = stored_text(conv.get("uuid"), "the conversation's uuid", optional=False)
    if not cid.strip():
        raise BadInput(f"{where}: the conversation's uuid is empty")
    name = conv.get("name")  # "" until Claude names a conversation: no title, as ChatGPT's untitled get
    title = stored_text(name, "the conversation's name") if isinstance(name, str) else ""
    started, updated = _time(conv.get("created_at"), "created_at"), _time(conv.get("updated_at"), "updated_at")
    where = f"{where} ({_shown(cid)})"
    messages = conv["chat_messages"]
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise BadInput(f"{where}, message {i}: not an object")
    records = []
    for i, message in enumerate(_branch(messages, conv, where)):
        uuid = message.get("uuid")
        message_where = f"{where}, message {_shown(uuid) if isinstance(uuid, str) else i}"
        try:
            record = _turn(message, message_where, left_out)
            if record is None:
                continue
            record.created_at = _time(message.get("created_at"), "created_at")
            if record.created_at is None:  # every export seen has one; the conversation's keeps the order
                if started is None:
                    raise BadInput("no created_at, and none for its conversation")
                record.created_at = started + i * 1e-3
            meta = {"source": "claude", "message_id": uuid if isinstance(uuid, str) else None}
            stored_text(json.dumps(meta, ensure_ascii=False), "the message's uuid")
        except BadInput as exc:
            raise BadInput(f"{message_where}: {exc}") from None
        record.conversation_id, record.meta, record.conversation_title = cid, meta, title
        record.conversation_created_at, record.conversation_updated_at = started, updated
        records.append(record)
    return records


def _branch(messages: list[dict], conv: dict, where: str) -> list[dict]:
    """The messages as the person last saw them. Newer exports name each message's parent
    (`parent_message_uuid`; the first one's is a sentinel no message has): an edited or retried
    message starts a branch, and the export holds every branch. Like the ChatGPT reader, keep one:
    from the current leaf (`current_leaf_message_uuid` where a file names it, else the newest leaf)
    back to the first message. Older exports name no parents; their list is the conversation."""
    parents = [m.get("parent_message_uuid") for m in messages]
    if not messages or not all(isinstance(p, str) for p in parents):
        return messages
    by_id = {m["uuid"]: i for i, m in enumerate(messages) if isinstance(m.get("uuid"), str)}
    named, leaf = set(parents), conv.get("current_leaf_message_uuid")
    if isinstance(leaf, str) and leaf in by_id:
        at = by_id[leaf]
    else:
        leaves = [i for i, m in enumerate(messages) if not isinstance(m.get("uuid"), str) or m["uuid"] not in named]
        if not leaves:
            raise BadInput(f"{where}: every message is another's parent: the parent links form a cycle")
        at = max(leaves, key=lambda i: (_sort_time(messages[i]), i))
    chain, seen = [], set()
    while at is not None:
        if at in seen:
            raise BadInput(f"{where}: the parent links of message {_shown(messages[at].get('uuid'))} form a cycle")
        seen.add(at)
        chain.append(messages[at])
        at = by_id.get(messages[at]["parent_message_uuid"])  # a parent not in the file: the branch starts here
    return chain[::-1]


def _turn(message: dict, where: str, left_out: list[LeftOut]) -> NewTurn | None:
    """The message as a turn (its time and conversation are set by the caller), or None (left out)."""
    sender = message.get("sender")
    if not isinstance(sender, str):
        raise BadInput("sender must be \"human\" or \"assistant\"")
    if sender not in ROLES:
        left_out.append(LeftOut(where, 0, f"sender {_shown(sender)} is neither human nor assistant"))
        return None
    said = _said(message, keep_as_written=sender == "human")
    if not fits(said, where, left_out):
        return None
    parts, size = [said] if said else [], len(said)
    for name, body in _attached(message):
        piece = f"[attached {name or 'text'}]\n{body}"
        if size + 2 + len(piece) > MAX_TURN_CHARS:  # the message is kept; this file's text is not
            left_out.append(LeftOut(f"{where}, attachment {_shown(name)}", len(body), f"{len(body):,} characters, "
                                    f"more than the turn has room for beside its message (a turn holds {MAX_TURN_CHARS:,})"))
            continue
        parts.append(piece)
        size += 2 + len(piece)
    if not parts:
        left_out.append(LeftOut(where, 0, "no text to store (an image, a file without text, or a tool call only)"))
        return None
    text = validate_text("\n\n".join(parts), MAX_TURN_CHARS)
    return NewTurn(text=text, role=ROLES[sender])


def _said(message: dict, keep_as_written: bool) -> str:
    """The message's text blocks, in order. Thinking, tool calls and tool results (web pages,
    search hits, file edits) are left out: they are the model's working, not what either side said,
    and would fill recall with pages nobody wrote; the reply that used them is kept. An older export
    without text blocks has only `text`; an assistant's loses the placeholders clients put in it."""
    content = message.get("content")
    if content is not None and not isinstance(content, list):
        raise BadInput("content must be a list of blocks")
    blocks = [b.get("text") for b in content or [] if isinstance(b, dict) and b.get("type") == "text"]
    said = "\n\n".join(t.strip() for t in blocks if isinstance(t, str) and t.strip())
    if not said:
        text = message.get("text")
        if text is not None and not isinstance(text, str):
            raise BadInput("text must be a string")
        said = (text or "").strip()
    return said if keep_as_written else _NOT_SAID.sub("\n\n", said).strip()


def _attached(message: dict) -> list[tuple[str | None, str]]:
    """(file name or None, text) of each attachment Claude extracted text from. They belong to the turn: Claude
    turns a long paste into an attachment (no name, or a made-up one), where ChatGPT keeps it in the
    message and memchat stores it (#24); and a document's text is what the message asks about. A
    file without extracted text (an image, `files`) adds nothing."""
    attachments = message.get("attachments")
    if attachments is None:
        return []
    if not isinstance(attachments, list):
        raise BadInput("attachments must be a list")
    found = []
    for attachment in attachments:
        if not isinstance(attachment, dict):
            raise BadInput("an attachment must be an object")
        body, name = attachment.get("extracted_content"), attachment.get("file_name")
        if body is not None and not isinstance(body, str):
            raise BadInput("an attachment's extracted_content must be a string")
        if body and body.strip():
            found.append((name.strip() if isinstance(name, str) and name.strip() else None, body.strip()))
    return found


def _time(value, name: str) -> float | None:
    return None if value is None else iso_time(value, name)


def _sort_time(message: dict) -> float:
    try:
        return iso_time(message.get("created_at"))
    except BadInput:
        return float("-inf")


def _shown(value) -> str:
    """An id as it goes into a one-line message."""
    return value if isinstance(value, str) and value.isprintable() and len(value) <= 80 else repr(value)[:80]
