"""How many of this process's CPUs other programs leave free, so the local model runs one thread
per free core instead of one per core.

A thread that shares its core with another busy program runs in that program's time slices, and
every parallel step waits for it. On a 2-core AVX-512 BF16 Xeon with one core kept busy, ONNX
Runtime on two threads decoded 67 tokens/s against 183 idle, and on one thread 101 (idle 96);
torch on two threads fell to 0.5 tokens/s (docs/benchmarks.md). So before each reply the engine
asks `CoreShare.threads()` what other processes used since it last asked.

What others used is the CPU time the kernel counts on our CPUs (/proc/stat) less this process's
own (`time.process_time`), over the wall time between two samples. Where /proc/stat cannot be read
(not Linux), every core counts as free, which is what memchat did before.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

MIN_WINDOW_S = 0.1  # shorter than this, a 100 Hz tick count says too little to act on


def allowed_cpus() -> set[int]:
    try:
        return set(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return set(range(os.cpu_count() or 1))


def physical_cores(cpus: set[int]) -> int:
    """Cores among `cpus`, two hyperthreads of one core counted once (torch and ONNX Runtime run
    one thread per core by default: a second thread on a core's sibling competes for its units)."""
    siblings = set()
    for n in cpus:
        try:
            siblings.add(Path(f"/sys/devices/system/cpu/cpu{n}/topology/thread_siblings_list").read_text().strip())
        except OSError:  # not Linux, or no topology: count each CPU
            return len(cpus)
    return max(1, len(siblings))


@dataclass(frozen=True)
class CpuSample:
    wall: float  # time.monotonic()
    busy: float | None  # CPU-seconds the kernel counted as busy on our CPUs since boot; None: unknown
    own: float  # this process's CPU-seconds


def _busy_seconds(cpus: set[int]) -> float | None:
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            lines = stat.read().splitlines()
    except OSError:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    busy = 0
    for line in lines:
        name, *fields = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
            # user nice system idle iowait irq softirq steal ...: idle and iowait are not busy
            values = [int(v) for v in fields[:8]]
            busy += sum(values) - values[3] - values[4]
    return busy / tick


def sample(cpus: set[int] | None = None) -> CpuSample:
    return CpuSample(time.monotonic(), _busy_seconds(cpus or allowed_cpus()), time.process_time())


def others_busy(before: CpuSample, after: CpuSample) -> float | None:
    """Cores other processes kept busy on average between two samples; None: not known."""
    wall = after.wall - before.wall
    if before.busy is None or after.busy is None or wall <= 0:
        return None
    return max(0.0, (after.busy - before.busy) - (after.own - before.own)) / wall


class CoreShare:
    """The thread count for the next piece of work: one per CPU that other processes left free
    since the last call, at most one per physical core (`cores`), at least one. A call within
    MIN_WINDOW_S of the last keeps its answer."""

    def __init__(self) -> None:
        self.cpus = allowed_cpus()
        self.cores = physical_cores(self.cpus)
        self._last = sample(self.cpus)
        self._threads = self.cores

    def threads(self, wait: bool = False) -> int:
        """`wait`: sleep until the window is long enough to measure (a first load has no history)."""
        now = sample(self.cpus)
        if wait and now.wall - self._last.wall < MIN_WINDOW_S:
            time.sleep(MIN_WINDOW_S - (now.wall - self._last.wall))
            now = sample(self.cpus)
        if now.wall - self._last.wall < MIN_WINDOW_S:
            return self._threads
        busy = others_busy(self._last, now)
        self._last = now
        if busy is not None:  # counted in CPUs: on a core's siblings, a busy one leaves the other
            self._threads = max(1, min(self.cores, int(len(self.cpus) - busy + 0.5)))
        return self._threads
