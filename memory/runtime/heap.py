"""The process's memory: how much is resident, and giving freed heap memory back to the operating
system after a burst of work (an import, a re-embed, a forget), so a memchat that stays open all
day does not keep an import's high-water mark.

glibc's malloc keeps freed memory inside the process unless it happens to sit at the top of the
heap; `malloc_trim(0)` returns every free page. The 20,000-turn soak held +20 % after its imports
without this (docs/benchmarks.md, "A long life"). Elsewhere (musl, macOS) there is no such call
and nothing is done.
"""
from __future__ import annotations

import ctypes
import sys
from functools import cache
from pathlib import Path


def resident_mb(field: str = "VmRSS") -> float:
    """Resident memory in MiB from /proc/self/status: VmRSS now, VmHWM the peak (NaN off Linux)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return float("nan")
    for line in status.splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@cache
def _malloc_trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return getattr(ctypes.CDLL("libc.so.6"), "malloc_trim", None)
    except OSError:  # not glibc
        return None


def release_freed_memory() -> None:
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
