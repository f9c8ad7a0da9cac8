"""The data directory's lock: several memchat processes share one memory, one writer at a time.

Everything memchat stores lives in the data directory (SQLite file, vector index, model cache);
it is 0700 and its files 0600 (memory/runtime/private_files.py) because it holds a person's
conversations.

The TUI stays open all day while scripts run `memchat memory add` or `ask` on the same data dir,
so no process holds the lock for its lifetime. Each operation takes an flock on `memchat.lock`
for as long as it runs: shared to read the vector index (recall), exclusive to change it (a write,
a forget, an index save) and for the whole of an operation that replaces the index (re-embed,
migrate, reindex). A process that has to wait longer than WAIT_NOTICE_S is told who holds the lock
and why, once, and keeps waiting. The OS drops an flock when its process dies, even on kill -9.
"""
from __future__ import annotations

import fcntl
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

LOCK_NAME = "memchat.lock"
WAIT_NOTICE_S = 1.0  # a write holds the lock for milliseconds; past this, say who we wait for
POLL_S = 0.02


class DataDirLock:
    """Shared/exclusive flock on the data dir, reentrant within one Memory.

    One instance per open Memory: its own file descriptor, so two Memory objects on one data dir
    (in one process or two) exclude each other as two processes do; a thread lock in front, since
    flock does not tell one thread of a process from another.
    """

    def __init__(self, data_dir: Path, on_wait: Callable[[str], None] | None = None):
        self.path = Path(data_dir) / LOCK_NAME
        self.on_wait = on_wait or (lambda message: None)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._mode: int | None = None

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._held(fcntl.LOCK_SH, ""):
            yield

    @contextmanager
    def exclusive(self, doing: str = "writing") -> Iterator[None]:
        """`doing` names the operation for anyone who has to wait for it ("re-embedding")."""
        with self._held(fcntl.LOCK_EX, doing):
            yield

    @contextmanager
    def _held(self, mode: int, doing: str) -> Iterator[None]:
        with self._thread_lock:
            outermost = self._depth == 0
            if outermost:
                self._acquire(mode, doing)
            elif mode == fcntl.LOCK_EX and self._mode == fcntl.LOCK_SH:
                raise RuntimeError("an exclusive lock inside a shared one could deadlock two processes")
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if outermost:
                    self._release()

    def _acquire(self, mode: int, doing: str) -> None:
        started = time.monotonic()
        told = False
        while True:
            try:
                fcntl.flock(self._fd, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not told and time.monotonic() - started >= WAIT_NOTICE_S:
                    told = True
                    self.on_wait(f"waiting for {self._holder()} to finish with the memory in {self.path.parent}")
                time.sleep(POLL_S)
        self._mode = mode
        if mode == fcntl.LOCK_EX and doing:
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, f"{os.getpid()} {doing}".encode(), 0)

    def _release(self) -> None:
        if self._mode == fcntl.LOCK_EX:
            os.ftruncate(self._fd, 0)  # the next waiter must not read a finished holder's note
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._mode = None

    def _holder(self) -> str:
        note = os.pread(self._fd, 200, 0).decode(errors="replace").strip()
        pid, _, doing = note.partition(" ")
        if not pid:
            return "another memchat process"
        return f"memchat pid {pid} ({doing})" if doing else f"memchat pid {pid}"

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
