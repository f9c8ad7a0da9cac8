"""The local model's engines: ONNX Runtime and torch (packed weights, single-query attention, one
torch thread), and the choice between them."""
from __future__ import annotations

import threading
import time

import pytest
import torch

from assistant.backends import BackendError, GenerationOptions, StreamState
from assistant.backends.cpu_decoding import QuantizedLinear, decode_attention
from assistant.backends.local import choose_runtime
from assistant.chat_bench import keep_cores_busy
from memory.runtime import free_cores, torch_thread
from tests.test_free_cores import linux_only, two_cpus


def answer(backend, question: str, tokens: int = 12) -> str:
    state = StreamState()
    messages = [{"role": "user", "content": question}]
    return "".join(backend.stream(messages, GenerationOptions(greedy=True, max_new_tokens=tokens),
                                  threading.Event(), state))


def test_packed_weights_keep_the_model_answering_correctly(torch_backend):
    """Packing SmolLM2 at its GGUF's own precision (4-bit blocks, 8-bit output layer) must not cost
    answers: quantizing activations too turned this one into French gibberish."""
    model = torch_backend.engine._model
    layers = [m for m in model.modules() if isinstance(m, QuantizedLinear)]
    assert {m.bits for m in layers} == {4, 8}
    assert model.get_output_embeddings().bits == 8
    assert "Paris" in answer(torch_backend, "What is the capital of France?")


def test_the_onnx_engine_answers_streams_and_stops(onnx_backend):
    assert "Paris" in answer(onnx_backend, "What is the capital of France?")
    state, cancel = StreamState(), threading.Event()
    chunks = []
    for chunk in onnx_backend.stream([{"role": "user", "content": "Count from one to fifty in words."}],
                                     GenerationOptions(greedy=True, max_new_tokens=200), cancel, state):
        chunks.append(chunk)
        if len(chunks) == 3:
            cancel.set()  # as Escape does
    assert len(chunks) == 3 and state.finish_reason == "cancelled"
    assert state.usage["prompt_tokens"] == onnx_backend.prompt_tokens([{"role": "user", "content": "Count from one to fifty in words."}])
    assert onnx_backend.engine.threads >= 1


@linux_only
@two_cpus
@pytest.mark.parametrize("runtime", ["onnx", "torch"])
def test_each_engine_answers_on_the_cpus_other_programs_leave_free(runtime, onnx_backend, torch_backend):
    """With one CPU kept busy by another process, the next reply runs one thread fewer (two threads
    on two cores decoded 0.5 tokens/s with torch); once it stops, the one after runs on all again."""
    backend = onnx_backend if runtime == "onnx" else torch_backend

    def threads() -> int:
        return backend.engine.threads if runtime == "onnx" else torch_thread.run(torch.get_num_threads)

    most = len(free_cores.allowed_cpus()) if runtime == "onnx" else torch_thread.run(torch_thread.default_threads)
    if most < 2:
        pytest.skip("torch runs one thread here")
    answer(backend, "Say hello.", tokens=2)  # the engines' sampler runs from their load on
    with keep_cores_busy(1):
        time.sleep(1.5)  # the recent samples are all of the busy stretch
        assert "Paris" in answer(backend, "What is the capital of France?")
        assert threads() == min(most, len(free_cores.allowed_cpus()) - 1)
    time.sleep(1.5)  # longer than the window
    answer(backend, "Say hello.", tokens=2)
    assert threads() == most
    if runtime == "onnx":
        assert f"{most} of {most} threads" in backend.describe()


def test_auto_takes_onnx_runtime_on_every_cpu_and_the_engine_can_be_chosen():
    assert choose_runtime()[0] == "onnx"  # installed by `make install`, whatever the CPU
    assert choose_runtime("torch") == ("torch", "chosen by MEMCHAT_LOCAL_RUNTIME")
    with pytest.raises(BackendError, match="auto, onnx, torch"):
        choose_runtime("tpu")


def test_capping_torch_at_avx2_counts_as_no_native_bf16(monkeypatch):
    """Any machine: with torch capped at AVX2 (how the AVX2 path is measured on AVX-512), the CPU
    counts as one without native bfloat16 (torch's dtype follows it), and auto still picks ONNX Runtime."""
    from memory.runtime import cpu

    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")
    assert cpu.native_bf16() is False and choose_runtime()[0] == "onnx"


@pytest.mark.parametrize("bits", [4, 8])
def test_a_packed_layer_computes_what_its_weights_say(bits):
    torch.manual_seed(0)
    linear = torch.nn.Linear(128, 96, bias=True).to(torch.bfloat16)
    packed = QuantizedLinear(linear, bits)
    row = torch.randn(1, 1, 128, dtype=torch.bfloat16)
    exact = torch.nn.functional.linear(row.float(), linear.weight.float(), linear.bias.float())
    decoded = packed(row).float()  # one row: the packed kernel
    error = (decoded - exact).norm() / exact.norm()
    assert error < (0.12 if bits == 4 else 0.02)
    prefill = packed(row.expand(1, 8, 128)).float()  # many rows: the bf16 weight, as before packing
    assert torch.allclose(prefill[0, 0], exact[0, 0], rtol=0.02, atol=0.02)


def test_single_query_attention_matches_sdpa():
    torch.manual_seed(1)
    query = torch.randn(1, 9, 1, 64, dtype=torch.bfloat16)  # 9 query heads sharing 3 key/value heads
    key = torch.randn(1, 3, 40, 64, dtype=torch.bfloat16)
    value = torch.randn(1, 3, 40, 64, dtype=torch.bfloat16)
    mask = torch.ones(1, 1, 1, 40, dtype=torch.bool)
    mask[..., :5] = False  # e.g. left padding
    expected = torch.nn.functional.scaled_dot_product_attention(
        query.float(), key.float().repeat_interleave(3, 1), value.float().repeat_interleave(3, 1),
        attn_mask=mask).transpose(1, 2)
    module = torch.nn.Module()
    module.num_key_value_groups = 3
    got, _ = decode_attention(module, query, key, value, mask, scaling=64 ** -0.5)
    assert got.shape == (1, 1, 9, 64)
    assert torch.allclose(got.float(), expected, atol=0.03)


def test_torch_work_from_any_thread_runs_on_one_thread():
    seen = []

    def where():
        seen.append(threading.get_ident())
        return torch_thread.run(threading.get_ident)  # nested: runs in place rather than waiting on itself

    threads = [threading.Thread(target=lambda: torch_thread.run(where)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == 1 and seen[0] != threading.get_ident()
    with pytest.raises(ZeroDivisionError):
        torch_thread.run(lambda: 1 / 0)


def test_an_unknown_weights_setting_is_refused_with_the_choices(tmp_path):
    from assistant.backends import BackendError
    from assistant.backends.local import LocalBackend

    for runtime in ("torch", "onnx"):
        with pytest.raises(BackendError, match="auto, int4, int8, dense"):
            LocalBackend(None, tmp_path, "int3", runtime=runtime)
    with pytest.raises(BackendError, match="auto, float32, bfloat16"):
        LocalBackend(None, tmp_path, dtype="fp8")


@pytest.mark.parametrize("runtime", ["onnx", "torch"])
def test_a_dropped_backend_frees_its_model(runtime, model_cache, local_backend):
    """Found by reading the code (#12): a class-level lru_cache on count_tokens kept every engine,
    so each backend or model switch in the app leaked a whole model."""
    import gc
    import weakref

    from assistant.backends.local import LocalBackend
    from memory.runtime import torch_thread

    backend = LocalBackend(None, model_cache, runtime=runtime)
    backend.load()
    assert backend.count_tokens("hello there") == backend.count_tokens("hello there") > 0
    engine = weakref.ref(backend.engine)
    torch_thread.run(int)  # the shared torch thread has moved past the load job (and let go of it)
    del backend
    gc.collect()
    assert engine() is None
