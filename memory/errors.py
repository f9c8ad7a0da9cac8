"""Expected failures of the memory side, each with a one-line message that says what to do next.

The CLI and the TUI print `str(error)` and exit (status 2 for bad input), never a traceback.
"""
from contextlib import contextmanager
from typing import Iterator


class MemoryError_(Exception):
    """Base class for expected memory failures (named with a trailing _ to not shadow the builtin)."""

    exit_code = 1


class BadInput(MemoryError_):
    """Text or a file that cannot be stored as given; nothing was stored."""

    exit_code = 2


class ModelMismatch(MemoryError_):
    """The store's vectors were made by a different embedding model than the one configured."""


class EmbeddingModelMissing(MemoryError_):
    """The configured embedding model is neither an installed package, a local path nor cached."""


class EmbeddingUnavailable(MemoryError_):
    """The embedding provider cannot be reached (network, or still 429/5xx after retries): turns are
    stored without vectors and embedded later; recall uses full-text search meanwhile."""


class EmbeddingRefused(MemoryError_):
    """The embedding provider refused the request (a wrong key, an unknown model): nothing stored."""


class NotFound(MemoryError_):
    """A turn or conversation id that the store does not hold."""

    exit_code = 2


class StorageFailure(MemoryError_):
    """The data dir's disk is full or read-only, or its database is locked: the operation changed nothing."""


@contextmanager
def storage_failures_named(data_dir) -> Iterator[None]:
    """Raise a full or read-only disk as StorageFailure, which the faces show as one line."""
    try:
        yield
    except Exception as exc:
        failure = None if isinstance(exc, MemoryError_) else storage_failure(exc, data_dir)
        if failure is None:
            raise
        raise failure from None


def storage_failure(exc: BaseException, data_dir) -> StorageFailure | None:
    """The one-line error for a disk that is full or read-only, or a database another program keeps
    locked, from SQLite's or the OS's error (None for anything else). SQLite rolls the transaction back in both cases, and the index file
    is written to a temp file first, so nothing was half-written."""
    import errno

    cause = getattr(exc, "orig", None) or exc  # SQLAlchemy wraps sqlite3's error
    sqlite_code = (getattr(cause, "sqlite_errorcode", None) or 0) & 0xFF  # the primary code
    os_code = getattr(cause, "errno", None)
    if sqlite_code == 13 or os_code in (errno.ENOSPC, errno.EDQUOT):  # SQLITE_FULL
        return StorageFailure(f"the disk holding {data_dir} is full; nothing was changed. Free some space "
                              "and run it again")
    if sqlite_code == 8 or os_code == errno.EROFS:  # SQLITE_READONLY
        return StorageFailure(f"{data_dir} is read-only; nothing was changed. memchat needs to write there, "
                              "even to search (its lock and SQLite's shared-memory file live there)")
    if sqlite_code in (5, 6):  # SQLITE_BUSY, SQLITE_LOCKED: another program held SQLite past the busy timeout
        return StorageFailure(f"the memory in {data_dir} is busy: another program kept its database locked for "
                              "over 5 s; nothing was changed. Run it again when that program is done")
    if os_code in (errno.EACCES, errno.EPERM):
        return StorageFailure(f"memchat may not write to {data_dir} ({cause.strerror}); nothing was changed")
    return None
