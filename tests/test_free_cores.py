"""The cores other programs leave free, measured from the kernel's CPU counts (Linux), so the local
model runs one thread per free core."""
from __future__ import annotations

import threading
import time

import pytest

from assistant.chat_bench import _busy
from memory.runtime import free_cores
from memory.runtime.free_cores import CoreShare, CpuSample

linux_only = pytest.mark.skipif(free_cores.sample().busy is None, reason="needs /proc/stat")


@linux_only
def test_another_process_spinning_counts_as_a_busy_core():
    with _busy(1):  # one process spinning, scheduled before this returns
        before = free_cores.sample()
        time.sleep(0.8)
        busy = free_cores.others_busy(before, free_cores.sample())
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


def with_one_busy(share: CoreShare) -> int:
    """The threads one busy CPU leaves (a busy hyperthread leaves its core's sibling free)."""
    return max(1, min(share.cores, len(share.cpus) - 1))


@linux_only
@pytest.mark.skipif(with_one_busy(CoreShare()) == CoreShare().cores, reason="one core: there is no thread to give up")
def test_a_busy_core_takes_one_thread_away_and_its_end_gives_it_back():
    share = CoreShare()
    assert share.threads(wait=True) == share.cores
    with _busy(1):
        time.sleep(0.5)
        assert share.threads() == with_one_busy(share)
        assert share.threads() == with_one_busy(share)  # asked again at once: too short to measure, kept
    time.sleep(1.0)
    assert share.threads() == share.cores


def test_hyperthreads_of_one_core_count_once():
    share = CoreShare()
    assert 1 <= share.cores <= len(share.cpus)
    assert free_cores.physical_cores(set()) == 1


def test_others_use_is_the_kernel_count_less_our_own_over_the_wall_time():
    unknown = CpuSample(wall=0.0, busy=None, own=0.0)
    assert free_cores.others_busy(unknown, CpuSample(wall=1.0, busy=None, own=0.5)) is None
    assert free_cores.others_busy(CpuSample(0.0, 10.0, 1.0), CpuSample(2.0, 13.0, 2.0)) == pytest.approx(1.0)


@linux_only
@pytest.mark.skipif(with_one_busy(CoreShare()) == CoreShare().cores, reason="one core: there is no thread to give up")
@pytest.mark.parametrize("dtype", ["auto", "float32"])
def test_the_embedders_batches_run_on_the_cores_other_programs_leave_free(dtype, embedder, model_cache):
    """An import's batches: on torch where bfloat16 is native, on ONNX Runtime where the embedder
    computes in float32 (with one of two cores busy, two torch threads embedded 99 turns/s and one 317)."""
    import torch

    from memory.embedding import Embedder
    from memory.runtime import torch_thread

    embedder = embedder if dtype == "auto" else Embedder(dtype="float32", cache_dir=model_cache)

    def threads() -> int:
        return torch_thread.run(torch.get_num_threads) if embedder.dtype == "bfloat16" else embedder.quick_engine().threads

    texts = [f"note {n}: the heating engineer comes on day {n} of the month" for n in range(40)]
    share = CoreShare()
    embedder.encode(texts)  # what other programs used is counted from here
    with _busy(1):
        time.sleep(0.5)
        busy = embedder.encode(texts)
        assert threads() == with_one_busy(share)
    time.sleep(1.0)
    idle = embedder.encode(texts)
    assert threads() == share.cores
    assert float((busy * idle).sum(axis=1).min()) > 0.999  # the same vectors on fewer threads
