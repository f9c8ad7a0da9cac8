"""An export as it is downloaded, a .zip (Claude's; ChatGPT's too): its `conversations.json`, read
from the archive in memory, nothing unpacked to disk, and no more of it than MAX_MEMBER_BYTES (a
small zip can unpack to any size). What the JSON holds is then read like the file on its own.
"""
from __future__ import annotations

import io
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from memory.errors import BadInput

ZIP_MAGIC = b"PK\x03\x04"
MEMBER = "conversations.json"
# Larger than any chat history we have seen described (hundreds of MB at most), small enough that
# a zip bomb is refused before it fills memory; past it, unzip the file and import the JSON.
MAX_MEMBER_BYTES = 1024 ** 3
# What a damaged, truncated, encrypted or oddly compressed archive raises while it is opened or read.
_BROKEN = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError,
           ValueError, OverflowError, OSError, KeyError, IndexError)


def is_zip(raw: bytes) -> bool:
    return raw[:4] == ZIP_MAGIC


def conversations_json(path: Path, raw: bytes) -> bytes:
    """The bytes of the archive's conversations.json (the shallowest one if there are several)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
        members = [m for m in archive.infolist() if not m.is_dir() and PurePosixPath(m.filename).name == MEMBER]
    except _BROKEN as exc:
        raise BadInput(f"{path}: a damaged zip ({_reason(exc)}); download the export again") from None
    if not members:
        raise BadInput(f"{path}: this zip holds no {MEMBER}; unzip it and import the export's conversations file")
    member = min(members, key=lambda m: (m.filename.count("/"), m.filename))
    if member.file_size > MAX_MEMBER_BYTES:
        raise BadInput(f"{path}: its {MEMBER} unpacks to {member.file_size:,} bytes, over the {MAX_MEMBER_BYTES:,} "
                       f"read from a zip; unzip it and import {MEMBER}")
    try:
        with archive.open(member) as handle:
            data = handle.read(MAX_MEMBER_BYTES + 1)  # the size in the header may lie
    except _BROKEN as exc:
        raise BadInput(f"{path}: cannot read {MEMBER} from the zip ({_reason(exc)}); "
                       "download the export again, or unzip it and import the file") from None
    if len(data) > MAX_MEMBER_BYTES:
        raise BadInput(f"{path}: its {MEMBER} unpacks to more than {MAX_MEMBER_BYTES:,} bytes; unzip it and "
                       f"import {MEMBER}")
    return data


def _reason(exc: Exception) -> str:
    return " ".join(str(exc).split())[:120] or type(exc).__name__
