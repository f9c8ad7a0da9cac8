"""What an unexpected exception may show a person: its kind and where it was raised, never its
message or local variables, which can hold the message typed, a prompt full of recalled memories or
a key (Textual's own crash report prints the locals of every frame)."""
from __future__ import annotations

import traceback
from pathlib import Path


def unexpected(exc: BaseException) -> str:
    """One line for a bug: 'unexpected TypeError in chat.py:123'. Expected failures say their own line."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "/assistant/" in f.filename or "/memory/" in f.filename] or frames
    where = f" in {Path(ours[-1].filename).name}:{ours[-1].lineno}" if ours else ""
    return f"unexpected {type(exc).__name__}{where} (a bug in memchat; please report it with this line)"


def one_line(exc: BaseException) -> str:
    """The line a face shows: an expected failure's own message (it says what to do next), else `unexpected`."""
    from assistant.backends.base import BackendError
    from memory.errors import MemoryError_

    if isinstance(exc, (MemoryError_, BackendError)) or getattr(exc, "exit_code", None) is not None:
        return str(exc)
    from memory.errors import storage_failure

    failure = storage_failure(exc, "the data dir")
    return str(failure) if failure is not None else unexpected(exc)
