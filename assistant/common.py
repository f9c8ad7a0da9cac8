"""What every face of memchat (the CLI's commands, the TUI) shares: opening the memory store
from the settings, reading a text argument, printing JSON. It sits below the commands, so the
arrows run one way: cli → commands → common → chat/memory.
"""
from __future__ import annotations

import json
import sys

from assistant.config import Settings, store_options
from memory.errors import BadInput


def open_memory(settings: Settings, progress=None, check_model: bool = True, on_wait=None, embedder=None):
    """Open the store the settings point at (the profile's record and index). `on_wait(message)`
    hears when another memchat holds the memory for a while (default: a line on stderr);
    `embedder`: one already loaded (a profile switch keeps the model)."""
    from memory.memory import Memory

    return Memory(settings.memory_dir, embedder or settings.embedder(), store=settings.store, store_options=store_options(settings),
                  progress=progress, check_model=check_model, on_wait=on_wait or say_waiting)


def say_waiting(message: str) -> None:
    print(f"memchat: {message}…", file=sys.stderr, flush=True)


def read_text_arg(value: str) -> str:
    """A command's text argument; `-` reads it from stdin (which must be UTF-8)."""
    if value != "-":
        return value
    try:
        return sys.stdin.buffer.read().decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput("stdin is not valid UTF-8; nothing stored") from None


def print_json(data) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))
