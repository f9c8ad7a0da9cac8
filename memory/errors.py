"""Expected failures of the memory side, each with a one-line message that says what to do next.

The CLI and the TUI print `str(error)` and exit (status 2 for bad input), never a traceback.
"""


class MemoryError_(Exception):
    """Base class for expected memory failures (named with a trailing _ to not shadow the builtin)."""

    exit_code = 1


class BadInput(MemoryError_):
    """Text or a file that cannot be stored as given; nothing was stored."""

    exit_code = 2


class StoreInUse(MemoryError_):
    """Another process holds the data dir's write lock."""


class ModelMismatch(MemoryError_):
    """The store's vectors were made by a different embedding model than the one configured."""


class EmbeddingModelMissing(MemoryError_):
    """The configured embedding model is neither an installed package, a local path nor cached."""


class NotFound(MemoryError_):
    """A turn or conversation id that the store does not hold."""

    exit_code = 2
