"""The cores other programs leave free, measured from the kernel's CPU counts (Linux), so the local
model runs one thread per free core."""
from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from memory.runtime import free_cores
from memory.runtime.free_cores import CoreShare, CpuSample

SPIN = "import os\nparent = os.getppid()\nwhile os.getppid() == parent:\n    pass"
linux_only = pytest.mark.skipif(free_cores.sample().busy is None, reason="needs /proc/stat")


def spinning_process():
    return subprocess.Popen([sys.executable, "-c", SPIN])


@linux_only
def test_another_process_spinning_counts_as_a_busy_core():
    hog = spinning_process()
    try:
        time.sleep(0.3)  # started and scheduled
        before = free_cores.sample()
        time.sleep(0.8)
        busy = free_cores.others_busy(before, free_cores.sample())
    finally:
        hog.kill()
        hog.wait()
    assert busy is not None and 0.6 <= busy <= len(free_cores.allowed_cpus()) + 0.1


@linux_only
def test_this_process_own_work_does_not_count():
    share = CoreShare()
    stop = time.monotonic() + 0.8

    def spin():
        while time.monotonic() < stop:
            pass

    worker = threading.Thread(target=spin)
    before = free_cores.sample()
    worker.start()
    worker.join()
    busy = free_cores.others_busy(before, free_cores.sample())
    assert busy is not None and busy < 0.5
    assert share.threads() == share.cores


@linux_only
@pytest.mark.skipif(len(free_cores.allowed_cpus()) < 2, reason="one core: there is no thread to give up")
def test_a_busy_core_takes_one_thread_away_and_its_end_gives_it_back():
    share = CoreShare()
    assert share.threads(wait=True) == share.cores
    hog = spinning_process()
    try:
        time.sleep(1.0)
        assert share.threads() == share.cores - 1
        assert share.threads() == share.cores - 1  # asked again at once: too short to measure, kept
    finally:
        hog.kill()
        hog.wait()
    time.sleep(1.0)
    assert share.threads() == share.cores


def test_others_use_is_the_kernel_count_less_our_own_over_the_wall_time():
    unknown = CpuSample(wall=0.0, busy=None, own=0.0)
    assert free_cores.others_busy(unknown, CpuSample(wall=1.0, busy=None, own=0.5)) is None
    assert free_cores.others_busy(CpuSample(0.0, 10.0, 1.0), CpuSample(2.0, 13.0, 2.0)) == pytest.approx(1.0)
