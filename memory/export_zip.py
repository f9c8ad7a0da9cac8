"""An export as it is downloaded, a .zip (Claude's; ChatGPT's too): its `conversations.json`, read
from the archive on disk (a ChatGPT export can be gigabytes of images: only the central directory
and that one member are read), nothing unpacked to disk, and no more of it than MAX_MEMBER_BYTES
(a small zip can unpack to any size). What the JSON holds is then read like the file on its own.
"""
from __future__ import annotations

import zipfile
import zlib
from pathlib import Path, PurePosixPath

from memory.errors import BadInput

ZIP_MAGIC = b"PK\x03\x04"
MEMBER = "conversations.json"
# Larger than any chat history we have seen described (hundreds of MB at most), small enough that
# a zip bomb is refused before it fills memory; past it, unzip the file and import the JSON.
MAX_MEMBER_BYTES = 1024 ** 3
CHUNK_BYTES = 1024 ** 2
# What a damaged, truncated, encrypted or oddly compressed archive raises while it is opened or read.
_BROKEN = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError,
           ValueError, OverflowError, OSError, KeyError, IndexError)


def is_zip(head: bytes) -> bool:
    """Whether a file's first bytes (4 are enough) are a zip's."""
    return head[:4] == ZIP_MAGIC


def conversations_json(path: Path, limit: int = MAX_MEMBER_BYTES) -> bytearray:
    """The bytes of the archive's conversations.json (the shallowest one if there are several),
    refused past `limit` bytes unpacked."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.infolist() if not m.is_dir() and PurePosixPath(m.filename).name == MEMBER]
            if not members:
                raise BadInput(f"{path}: this zip holds no {MEMBER}; unzip it and import the export's "
                               "conversations file")
            member = min(members, key=lambda m: (m.filename.count("/"), m.filename))
            if member.file_size > limit:
                raise BadInput(f"{path}: its {MEMBER} unpacks to {member.file_size:,} bytes, over the {limit:,} "
                               f"read from a zip; unzip it and import {MEMBER}")
            return _read_member(path, archive, member, limit)
    except _BROKEN as exc:
        raise BadInput(f"{path}: a damaged zip ({_reason(exc)}); download the export again") from None


def _read_member(path: Path, archive: zipfile.ZipFile, member: zipfile.ZipInfo, limit: int) -> bytearray:
    # Counted chunk by chunk, whatever the header says: CPython's ZipExtFile stops at the declared
    # size (a lie then fails the CRC check), but the bound must not rest on that.
    data = bytearray()  # grown in place: no second copy of up to `limit` bytes at the end
    try:
        with archive.open(member) as handle:
            while chunk := handle.read(CHUNK_BYTES):
                if len(data) + len(chunk) > limit:
                    raise BadInput(f"{path}: its {MEMBER} unpacks to more than {limit:,} bytes; unzip it and "
                                   f"import {MEMBER}")
                data += chunk
    except _BROKEN as exc:
        raise BadInput(f"{path}: cannot read {MEMBER} from the zip ({_reason(exc)}); "
                       "download the export again, or unzip it and import the file") from None
    return data


def _reason(exc: Exception) -> str:
    return " ".join(str(exc).split())[:120] or type(exc).__name__
