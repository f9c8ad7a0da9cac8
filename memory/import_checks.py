"""Checks of one imported record, shared by the readers in memory/io.py: a malformation becomes a
rejection naming the record, a string field must be text SQLite can hold, a date one a calendar
can show, and a message too long to store is left out and named instead of rejecting the file.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from memory.errors import BadInput
from memory.turn import MAX_TURN_CHARS, from_iso

# What a malformed record raises on its way through a reader (a string where a dict belongs, a
# number that is not one, JSON nested past Python's recursion limit): turned into a rejection
# naming the record, never a traceback.
MALFORMED = (TypeError, ValueError, AttributeError, KeyError, IndexError, OverflowError, RecursionError)


class RecordCheck:
    """`with RecordCheck(where):` one record's parsing; any malformation becomes BadInput naming it."""

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


def stored_text(value, name: str, optional: bool = True) -> str | None:
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


def timestamp(value: float) -> float:
    """Epoch seconds a calendar can show (year 1 to 9999); NaN and infinities are not times."""
    value = float(value)
    if not -62_000_000_000 < value < 253_000_000_000:
        raise BadInput(f"created_at {value!r} is not a date")
    return value


def iso_time(value, name: str = "created_at") -> float:
    if not isinstance(value, str):
        raise BadInput(f"{name} must be an ISO 8601 date such as \"2024-05-01T09:30:00Z\", not {value!r:.40}")
    try:
        return timestamp(from_iso(value))
    except (TypeError, ValueError, OverflowError, AttributeError) as exc:
        raise BadInput(f"bad {name} ({str(exc)[:120]})") from None  # the value itself may be huge


def parse_json(path: Path, content: str):
    """A whole file's JSON; invalid or too deeply nested JSON is a rejection naming the file."""
    try:
        return json.loads(content)
    except json.JSONDecodeError as exc:
        raise BadInput(f"{path}: line {exc.lineno}: invalid JSON ({exc.msg})") from None
    except RecursionError:
        raise BadInput(f"{path}: JSON nested too deeply to be a conversation export") from None


@dataclass
class LeftOut:
    """A message the import goes on without, named: too long to store as one turn, or (`reason`)
    one that holds nothing to store, such as a Claude message with only an image."""

    where: str  # the file and its line, conversation and message, or sample and turn
    characters: int
    reason: str | None = None  # None: over the characters a turn holds

    def __str__(self) -> str:
        if self.reason:
            return f"{self.where}: {self.reason}"
        return f"{self.where}: {self.characters:,} characters, over the {MAX_TURN_CHARS:,} a turn holds"

    def to_json(self) -> dict:
        return {"where": self.where, "characters": self.characters,
                "reason": self.reason or f"over the {MAX_TURN_CHARS:,} characters a turn holds"}


def fits(text, where: str, left_out: list[LeftOut]) -> bool:
    """False (and `where` noted in left_out) for a text too long to store; other checks come later."""
    if isinstance(text, str) and len(text) > MAX_TURN_CHARS:
        left_out.append(LeftOut(where, len(text)))
        return False
    return True
