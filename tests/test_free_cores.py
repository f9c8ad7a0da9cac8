"""The CPUs other programs leave free, measured from the kernel's CPU counts (Linux), so the local
model and the embedder's batches run one thread per free CPU."""
from __future__ import annotations

import threading
import time

import pytest

from assistant.chat_bench import keep_cores_busy
from memory.runtime import free_cores, torch_thread
from memory.runtime.free_cores import CoreShare, CpuSample

linux_only = pytest.mark.skipif(free_cores.sample().busy is None, reason="needs /proc/stat")
two_cpus = pytest.mark.skipif(len(free_cores.allowed_cpus()) < 2, reason="one CPU: there is no thread to give up")


def test_the_count_follows_the_free_cpus_and_ignores_small_moves():
    share = CoreShare(most=4)
    assert share.decide(4.0) == 4  # it starts at `most`
    assert share.decide(3.6) == 4  # less than HYSTERESIS away: kept
    assert share.decide(3.0) == 3
    assert share.decide(3.5) == 3
    assert share.decide(0.2) == 1  # at least one
    assert share.decide(7.5) == 4  # at most `most`
    assert CoreShare(most=None).most == len(free_cores.allowed_cpus())


def test_others_use_is_the_kernel_count_less_our_own_over_the_wall_time():
    unknown = CpuSample(wall=0.0, busy=None, own=0.0)
    assert free_cores.others_busy(unknown, CpuSample(wall=1.0, busy=None, own=0.5)) is None
    assert free_cores.others_busy(CpuSample(0.0, 10.0, 1.0), CpuSample(2.0, 13.0, 2.0)) == pytest.approx(1.0)
    assert free_cores.others_busy(CpuSample(0.0, 10.0, 1.0), CpuSample(2.0, 11.0, 5.0)) == 0.0  # a child reaped


@linux_only
def test_another_process_spinning_counts_as_a_busy_cpu():
    with keep_cores_busy(1):  # one process spinning, scheduled before this returns
        before = free_cores.sample()
        time.sleep(0.8)
        busy = free_cores.others_busy(before, free_cores.sample())
    assert busy is not None and 0.6 <= busy <= len(free_cores.allowed_cpus()) + 0.1


@linux_only
def test_this_process_own_work_does_not_count():
    stop = time.monotonic() + 0.8

    def spin():
        while time.monotonic() < stop:
            pass

    worker = threading.Thread(target=spin)
    before = free_cores.sample()
    worker.start()
    worker.join()
    busy = free_cores.others_busy(before, free_cores.sample())
    assert busy is not None and busy < 0.8  # a whole CPU of our own would read as 1.0


@linux_only
@two_cpus
def test_a_busy_cpu_takes_one_thread_away_and_its_end_gives_it_back():
    share = CoreShare()
    share.threads(wait=True)  # starts the sampler
    with keep_cores_busy(1):
        time.sleep(1.5)  # the recent samples are all of the busy stretch
        assert share.threads() == share.most - 1
    time.sleep(1.5)  # longer than the window: the busy stretch is out of it
    assert share.threads() == share.most


@linux_only
@two_cpus
@pytest.mark.parametrize("dtype", ["auto", "float32"])
def test_the_embedders_batches_run_on_the_cpus_other_programs_leave_free(dtype, embedder, model_cache):
    """An import's batches: on torch where bfloat16 is native, on ONNX Runtime where the embedder
    computes in float32 (with one of two cores busy, two torch threads embedded 99 turns/s and one 317)."""
    import torch

    from memory.embedding import Embedder

    embedder = embedder if dtype == "auto" else Embedder(dtype="float32", cache_dir=model_cache)
    on_torch = embedder.dtype == "bfloat16"
    most = torch_thread.run(torch_thread.default_threads) if on_torch else len(free_cores.allowed_cpus())
    if most < 2:
        pytest.skip("torch runs one thread here")

    def threads() -> int:
        return torch_thread.run(torch.get_num_threads) if on_torch else embedder.quick_engine().threads

    texts = [f"note {n}: the heating engineer comes on day {n} of the month" for n in range(40)]
    embedder.encode(texts)  # starts the sampler
    with keep_cores_busy(1):
        time.sleep(1.5)
        busy = embedder.encode(texts)
        assert threads() == min(most, len(free_cores.allowed_cpus()) - 1)
    time.sleep(1.5)
    idle = embedder.encode(texts)
    assert threads() == most
    assert float((busy * idle).sum(axis=1).min()) > 0.999  # the same vectors on fewer threads


@two_cpus
def test_an_encode_leaves_no_thread_spinning_on_a_core_after_it(embedder):
    """ONNX Runtime's idle workers spun for 26 ms of a core after every run by default, beside the
    chat model's prefill that starts a few ms later; each run is now on the caller's thread alone,
    so none is left to spin (memory/onnx_encoder.py)."""
    quick = embedder.quick_engine()
    quick.encode(["a first text, so the session exists"])
    time.sleep(0.3)  # whatever ran before in this process has gone quiet
    quick.encode(["what did the plumber say about the boiler"])
    before = time.process_time()
    time.sleep(0.08)
    spent_ms = (time.process_time() - before) * 1000
    assert spent_ms < 10, spent_ms  # every thread of this process, over 80 ms of wall time
