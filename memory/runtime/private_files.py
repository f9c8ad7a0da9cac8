"""Owner-only directories and files: the data dir and the model cache hold a person's conversations."""
from __future__ import annotations

import os
from pathlib import Path


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (and parents) if needed and make it, and every parent it created, readable by
    its owner only (a profile's directory sits two levels below a data dir that may be new)."""
    path = Path(path).expanduser()
    missing = []
    probe = path
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    path.mkdir(parents=True, exist_ok=True)
    for made in [path, *missing]:
        os.chmod(made, 0o700)
    return path


def make_private(path: Path) -> None:
    """Restrict one file to its owner; ignore files that do not exist (yet)."""
    try:
        os.chmod(path, 0o600)
    except FileNotFoundError:
        pass
