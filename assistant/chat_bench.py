"""`memchat bench --chat`: the cost of one chat turn apart from generation, and the local model's speed.

Overhead = store the user turn + recall + build the prompt + store the reply (committed; its
embedding comes after the turn returns and is reported apart, as after_return) + the standing-memory
proposal (nothing to read in the bench's questions: a statement of several sentences costs an
encode per further sentence, docs/answers.md), measured by
ChatService's own timings on a store of `size` generated memories (with cached embeddings), using
the real local backend asked for a single token so generation barely counts (the turn's first
token, its memory-augmented prompt's prefill, is reported beside it). Then the local model
on each engine (the one this CPU chooses first): load time from its cache in this process, time
to first token for a 300-token prompt, decoding tokens/s after the first token, tokens/s overall.
"""
from __future__ import annotations

import contextlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from assistant.backends import GenerationOptions
from assistant.backends.local import LocalBackend
from assistant.chat import ChatService
from memory import corpus
from memory.bench import bench_records, corpus_vectors
from memory.embedding import Embedder
from memory.memory import Memory
from memory.runtime import cpu, free_cores


def run_chat_bench(size: int, turns: int, cache_dir: Path, model_cache: Path, embedder: Embedder, progress,
                   model: str | None = None, busy_cores: int = 0, pause: float = 0.0) -> dict:
    """`model`: the local model to measure (a pulled name or a GGUF path; None: the packaged SmolLM2).
    `busy_cores`: also measure each engine while that many processes keep a core busy each (a
    person's laptop is rarely idle), with each figure's slowdown against the idle run.
    `pause`: seconds before each turn. Back to back (0), a turn's first encode shares the cores with
    the threads the last reply's engine leaves spinning, which a person's next message never meets."""
    texts = corpus.turns(size)
    vectors = corpus_vectors(embedder, texts, cache_dir, progress)
    work = Path(tempfile.mkdtemp(prefix="memchat-chat-bench-"))
    try:
        with Memory(work, embedder) as memory:
            memory.remember_many(bench_records(texts), vectors=vectors, batch_size=4096, progress=progress)
            backend = LocalBackend(model, model_cache)
            backend.load()  # converts the GGUF once if the cache is empty
            # k=5, more than the default 3, so figures compare with earlier runs and err on the slow side.
            service = ChatService(memory, backend, k=5, options=GenerationOptions(greedy=True, max_new_tokens=1))
            questions = corpus.questions(turns + 5, seed=23)
            conversation = None
            overhead, laps = [], {}
            for n, question in enumerate(questions):
                time.sleep(pause)
                reply = service.ask(question, conversation)
                started = time.perf_counter()
                memory.embed_deferred()  # the reply's vector, after the turn returned (as the faces do)
                after = (time.perf_counter() - started) * 1000
                conversation = reply.conversation_id if n % 10 else None  # a new conversation now and then
                if n >= 5:  # the first turns warm caches up
                    overhead.append(reply.timings["overhead_ms"])
                    for lap in ("store_user_ms", "recall_ms", "prompt_ms", "store_reply_ms", "propose_ms"):
                        laps.setdefault(lap, []).append(reply.timings[lap])
                    laps.setdefault("after_return_ms", []).append(after)
                    # The prompt's prefill and one token (none when the one token was the end or empty).
                    if "first_token_ms" in reply.timings:
                        laps.setdefault("turn_first_token_ms", []).append(reply.timings["first_token_ms"])
                progress("chat turns", n + 1, len(questions))
        chosen = backend.runtime
        # Both engines, the chosen one first: each CPU's figures for the path it does not take too.
        engines = {runtime: _local_model_speed(model_cache, "auto" if runtime == chosen else runtime, model)
                   for runtime in (chosen, *(r for r in ("onnx", "torch") if r != chosen))}
        loaded = {}
        if busy_cores:
            with keep_cores_busy(busy_cores):
                loaded = {runtime: _local_model_speed(model_cache, "auto" if runtime == chosen else runtime, model)
                          for runtime in engines}
            for runtime, figures in loaded.items():
                idle = engines[runtime]
                figures["first_token_slowdown"] = round(figures["first_token_s"] / idle["first_token_s"], 2)
                figures["decode_slowdown"] = round(idle["decode_tokens_per_s"] / figures["decode_tokens_per_s"], 2)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"machine": cpu.describe(), "model": backend.model, "size": size, "turns": len(overhead), "pause_s": pause,
            "overhead_p50_ms": round(statistics.median(overhead), 2),
            "overhead_p95_ms": round(float(np.percentile(overhead, 95)), 2),
            **{f"{lap[:-3]}_p50_ms": round(statistics.median(values), 2) for lap, values in laps.items()},
            "embed_engine": embedder.engine, "embed_dtype": embedder.dtype, "local_runtime": chosen,
            **engines[chosen], "engines": engines,
            **({"busy_cores": busy_cores, "engines_with_busy_cores": loaded} if busy_cores else {})}


# Spins until its parent is gone, so a bench killed outright leaves no process spinning behind.
_SPIN = "import os\nparent = os.getppid()\nwhile os.getppid() == parent:\n    pass"


@contextlib.contextmanager
def keep_cores_busy(cores: int):
    """`cores` processes spinning on the CPU (each takes one core), stopped on the way out. Their
    own session: a Ctrl+C at the terminal stops the bench, which stops them."""
    hogs = []
    try:
        for _ in range(cores):
            hogs.append(subprocess.Popen([sys.executable, "-c", _SPIN], start_new_session=True))
        # Running for a whole window of the engines' CPU sampler before the measurement starts, as
        # a person's other work has by the time they ask (memory/runtime/free_cores.py).
        time.sleep(free_cores.RECENT_S + free_cores.SAMPLE_EVERY_S)
        yield hogs
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def _local_model_speed(model_cache: Path, runtime: str = "auto", model: str | None = None) -> dict:
    started = time.perf_counter()
    backend = LocalBackend(model, model_cache, runtime=runtime)
    backend.load()
    load_s = time.perf_counter() - started
    import threading

    from assistant.backends import StreamState

    messages = _messages_of(backend, PROMPT_TOKENS)
    first, decoding, overall = [], [], []
    for _ in range(5):
        state = StreamState()
        started = time.perf_counter()
        first_at = None
        for _chunk in backend.stream(messages, GenerationOptions(greedy=True, max_new_tokens=64), threading.Event(), state):
            first_at = first_at or time.perf_counter()
        ended = time.perf_counter()
        tokens = state.usage["completion_tokens"]
        first.append(first_at - started)
        decoding.append((tokens - 1) / (ended - first_at))
        overall.append(tokens / (ended - started))
    return {"local_engine": backend.describe(), "model_load_s": round(load_s, 2),
            "prompt_tokens": state.usage["prompt_tokens"],
            "first_token_s": round(statistics.median(first), 3),
            "decode_tokens_per_s": round(statistics.median(decoding), 1),
            "tokens_per_s_with_prefill": round(statistics.median(overall), 1)}


PROMPT_TOKENS = 300


def _messages_of(backend, tokens: int) -> list[dict]:
    """A system prompt and a message of everyday notes, `tokens` long with the chat template."""
    notes: list[str] = []
    for turn in corpus.turns(200):
        messages = [{"role": "system", "content": "You are a helpful assistant."},
                    {"role": "user", "content": " ".join(notes + [turn]) + "\n\nSummarise the notes above."}]
        if backend.prompt_tokens(messages) > tokens:
            break
        notes.append(turn)
    return [{"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": " ".join(notes) + "\n\nSummarise the notes above."}]
