"""A progress bar for long memory operations, drawn on stderr only once a phase passes one second."""
from __future__ import annotations

import sys
import time


class ProgressBar:
    """Callable as memory's `progress(phase, done, total)`; use as a context manager."""

    def __init__(self, delay_s: float = 1.0, enabled: bool = True):
        self.delay_s = delay_s
        self.enabled = enabled and sys.stderr.isatty()
        self._started: dict[str, float] = {}
        self._progress = None
        self._tasks: dict[str, int] = {}

    def __call__(self, phase: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        first = self._started.setdefault(phase, time.monotonic())
        if self._progress is None:
            if time.monotonic() - first < self.delay_s:
                return
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TimeRemainingColumn(), console=Console(stderr=True), transient=True)
            self._progress.start()
        if phase not in self._tasks:
            self._tasks[phase] = self._progress.add_task(phase, total=total)
        self._progress.update(self._tasks[phase], completed=done, total=total)

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()
