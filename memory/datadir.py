"""The data directory's single-writer lock.

Everything memchat stores lives in the data directory (SQLite file, vector index, model cache);
it is 0700 and its files 0600 (memory/runtime/private_files.py) because it holds a person's
conversations.
"""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

from memory.errors import StoreInUse

LOCK_NAME = "memchat.lock"


class DataDirLock:
    """An exclusive, non-blocking flock on the data dir, held while a store is open.

    A second process that opens the same store gets StoreInUse instead of two writers racing on
    the vector index file. The OS drops the lock when the process dies, even on kill -9.
    """

    def __init__(self, data_dir: Path):
        self.path = Path(data_dir) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise StoreInUse(
                f"the memory store in {self.path.parent} is in use by pid {holder}; "
                "close that memchat first, or use another --data-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
