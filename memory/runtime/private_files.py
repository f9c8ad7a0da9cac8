"""Owner-only directories and files: the data dir and the model cache hold a person's conversations."""
from __future__ import annotations

import os
from pathlib import Path


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (and parents) if needed and make it readable by its owner only."""
    path = Path(path).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def make_private(path: Path) -> None:
    """Restrict one file to its owner; ignore files that do not exist (yet)."""
    try:
        os.chmod(path, 0o600)
    except FileNotFoundError:
        pass
