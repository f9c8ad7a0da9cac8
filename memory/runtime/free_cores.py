"""How many of this process's CPUs other programs leave free now, so the local model and the
embedder's batches run one thread per free CPU instead of one per CPU.

A thread that shares its CPU with another busy program runs in that program's time slices, and
every parallel step waits for it. On a 2-core AVX-512 BF16 Xeon with one core kept busy, ONNX
Runtime on two threads decoded 67 tokens/s against 183 idle, and on one thread 101 (idle 96);
torch on two threads fell to 0.5 tokens/s (docs/benchmarks.md).

What others use is the CPU time the kernel counts on our CPUs (/proc/stat) less this process's
own and its finished children's, over the last second or so: a daemon thread samples the counts
four times a second (~20 µs a sample), so a reply after a long pause sees the load of the moment,
not the pause's average. Where /proc/stat cannot be read (not Linux), every CPU counts as
free, which is what memchat did before.
"""
from __future__ import annotations

import os
import threading
import time
from collections import deque
from dataclasses import dataclass

SAMPLE_EVERY_S = 0.25
RECENT_S = 1.0  # how far back the window reaches: older load says little about the next reply
MIN_WINDOW_S = 0.1  # shorter than this, a 100 Hz tick count says too little to act on
# Free CPUs must move this far from the current thread count to change it, so a load hovering
# near half a core does not reload the model (~0.2 s) at every reply.
HYSTERESIS = 0.75


def allowed_cpus() -> frozenset[int]:
    try:
        return frozenset(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return frozenset(range(os.cpu_count() or 1))


@dataclass(frozen=True)
class CpuSample:
    wall: float  # time.monotonic()
    busy: float | None  # CPU-seconds the kernel counted as busy on our CPUs since boot; None: unknown
    own: float  # this process's CPU-seconds and its reaped children's (a model build, say)
    cpus: frozenset[int] = frozenset()


def _busy_seconds(cpus: frozenset[int]) -> float | None:
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            lines = stat.read().splitlines()
    except OSError:
        return None
    busy = 0
    for line in lines:
        name, *fields = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
            # user nice system idle iowait irq softirq steal ...: idle and iowait are not busy
            values = [int(v) for v in fields[:8]]
            busy += sum(values) - values[3] - values[4]
    return busy / os.sysconf("SC_CLK_TCK")


def sample(cpus: frozenset[int] | None = None) -> CpuSample:
    cpus = cpus if cpus is not None else allowed_cpus()
    children = os.times()
    own = time.process_time() + children.children_user + children.children_system
    return CpuSample(time.monotonic(), _busy_seconds(cpus), own, cpus)


def others_busy(before: CpuSample, after: CpuSample) -> float | None:
    """CPUs other processes kept busy on average between two samples; None: not known."""
    wall = after.wall - before.wall
    if before.busy is None or after.busy is None or wall <= 0:
        return None
    return max(0.0, (after.busy - before.busy) - (after.own - before.own)) / wall


class _Sampler:
    """The process's recent samples, taken by one daemon thread started on first use."""

    def __init__(self) -> None:
        self._samples: deque[CpuSample] = deque(maxlen=int(RECENT_S / SAMPLE_EVERY_S) + 1)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def oldest(self, cpus: frozenset[int]) -> CpuSample | None:
        """The oldest recent sample of these CPUs (up to ~RECENT_S old); starts sampling if it has not."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="memchat-cpu-sampler", daemon=True)
                self._thread.start()
            return next((s for s in self._samples if s.cpus == cpus), None)

    def _run(self) -> None:
        while True:
            taken = sample()
            with self._lock:
                self._samples.append(taken)
            time.sleep(SAMPLE_EVERY_S)


_sampler = _Sampler()


class CoreShare:
    """The thread count for the next piece of work: one per CPU other processes leave free, at
    most `most` (default: every CPU this process may use), at least one."""

    def __init__(self, most: int | None = None) -> None:
        self.cpus = allowed_cpus()
        self.most = max(1, most or len(self.cpus))
        self._threads = self.most
        self._lock = threading.Lock()

    def threads(self, wait: bool = False) -> int:
        """`wait`: where there is no recent sample yet (a first load), measure for MIN_WINDOW_S now;
        otherwise such a call keeps the current count."""
        with self._lock:
            now = sample(self.cpus)
            before = _sampler.oldest(self.cpus)
            if before is None or now.wall - before.wall < MIN_WINDOW_S:
                if not wait:
                    return self._threads
                before = now
                time.sleep(MIN_WINDOW_S)
                now = sample(self.cpus)
            busy = others_busy(before, now)
            return self._threads if busy is None else self.decide(len(self.cpus) - busy)

    def decide(self, free: float) -> int:
        """The count for `free` CPUs, moved only when `free` is HYSTERESIS away from it."""
        if abs(free - self._threads) >= HYSTERESIS:
            self._threads = max(1, min(self.most, int(free + 0.5)))
        return self._threads
