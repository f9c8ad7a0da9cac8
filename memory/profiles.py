"""Profiles: whose memory. Each profile is a store of its own, in its own directory.

The `default` profile is the data dir itself (so a data dir from before profiles is its default
profile, unchanged); profile NAME lives in `<data dir>/profiles/NAME/`, with its own SQLite file,
vector index, lock and, for the hosted stores, its own store id (so its own tables, collections
and namespaces). No query carries a profile filter, so none can forget one: a recall, search,
export or `forget --all` opened on one profile has no other profile's rows to reach. The
embedder's ONNX copy and converted models stay shared in `<data dir>/models`; they hold no memories.
"""
from __future__ import annotations

import re
from pathlib import Path

from memory.errors import BadInput

DEFAULT = "default"
PROFILES_DIR = "profiles"
DB_NAME = "memchat.db"
# A directory name on every platform: no separators, no dots in front, nothing a shell mangles.
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")


def validate_profile(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise BadInput(f"profile {name!r}: use 1-40 lowercase letters, digits, - or _ (starting with a letter "
                       "or digit), e.g. --profile work")
    return name


def profile_dir(data_dir: Path, name: str) -> Path:
    """Where profile `name`'s memories live."""
    name = validate_profile(name)
    return Path(data_dir) if name == DEFAULT else Path(data_dir) / PROFILES_DIR / name


def list_profiles(data_dir: Path) -> list[str]:
    """Profiles that hold a store in this data dir, default first then by name."""
    data_dir = Path(data_dir)
    found = [DEFAULT] if (data_dir / DB_NAME).is_file() else []
    root = data_dir / PROFILES_DIR
    if root.is_dir():
        found += sorted(p.name for p in root.iterdir() if _NAME.fullmatch(p.name) and (p / DB_NAME).is_file())
    return found


def profile_counts(data_dir: Path) -> list[dict]:
    """Each profile with its conversation and turn counts (read-only: nothing is opened for writing)."""
    import sqlite3

    out = []
    for name in list_profiles(data_dir):
        db = profile_dir(data_dir, name) / DB_NAME
        turns = conversations = None  # unknown: a store that cannot be read (say why with `--profile NAME memory stats`)
        try:
            conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
            try:
                turns = conn.execute("SELECT count(*) FROM turns").fetchone()[0]
                conversations = conn.execute("SELECT count(*) FROM conversations").fetchone()[0]
            finally:
                conn.close()
        except sqlite3.Error:
            pass
        out.append({"profile": name, "conversations": conversations, "turns": turns,
                    "dir": str(profile_dir(data_dir, name))})
    return out
