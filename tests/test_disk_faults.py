"""A full disk and a read-only data dir (#12): one clear line, nothing half-written, and the
memory opens and takes writes once space is back. The data dir lives on a small tmpfs the test
mounts (root, or a user namespace that allows it)."""
from __future__ import annotations

import json
import sqlite3
import subprocess

import pytest

from tests.conftest import MEMCHAT, REPO


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here: {made.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def _memchat(env, *args):
    return subprocess.run([*MEMCHAT, *args], env=env, cwd=REPO, capture_output=True, text=True)


def _fill(mount) -> None:
    with open(mount / "filler", "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass


def _turns(data_dir) -> list[str]:
    with sqlite3.connect(data_dir / "memchat.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        conn.execute("INSERT INTO turns_fts(turns_fts, rank) VALUES ('integrity-check', 1)")
        return [r[0] for r in conn.execute("SELECT text FROM turns ORDER BY id")]


def _one_line_error(proc, words: str) -> None:
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("memchat: error:") and words in lines[0], proc.stderr


def test_a_full_disk_changes_nothing_and_the_memory_opens_when_space_is_back(small_disk, cli_env, tmp_path):
    data_dir = small_disk / "data"
    env = dict(cli_env, MEMCHAT_DATA_DIR=str(data_dir))
    assert _memchat(env, "memory", "add", "The apple tree was planted in 2019.").returncode == 0
    notes = tmp_path / "notes.jsonl"
    notes.write_text("".join(json.dumps({"text": f"Imported note {n} about pears."}) + "\n" for n in range(300)))
    _fill(small_disk)
    _one_line_error(_memchat(env, "memory", "add", "The pear tree came in 2021."), "is full")
    _one_line_error(_memchat(env, "memory", "import", str(notes)), "is full")
    assert not list(data_dir.glob("*.tmp"))
    (small_disk / "filler").unlink()
    assert _turns(data_dir) == ["The apple tree was planted in 2019."]  # (reading needs space for the WAL too)
    assert _memchat(env, "memory", "import", str(notes)).returncode == 0
    stats = json.loads(_memchat(env, "memory", "stats", "--json").stdout)
    assert stats["turns"] == stats["indexed"] == 301
    found = json.loads(_memchat(env, "memory", "search", "apple tree planted", "-k", "1", "--json").stdout)
    assert "2019" in found[0]["text"]


def test_a_read_only_data_dir_is_one_clear_line(small_disk, cli_env):
    data_dir = small_disk / "data"
    env = dict(cli_env, MEMCHAT_DATA_DIR=str(data_dir))
    assert _memchat(env, "memory", "add", "The boat is moored at pier 4.").returncode == 0
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    try:
        _one_line_error(_memchat(env, "memory", "add", "The car is in bay 9."), "read-only")
        _one_line_error(_memchat(env, "memory", "search", "boat"), "read-only")
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    assert _turns(data_dir) == ["The boat is moored at pier 4."]
    assert _memchat(env, "memory", "add", "The car is in bay 9.").returncode == 0
