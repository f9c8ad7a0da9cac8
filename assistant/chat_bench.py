"""`memchat bench --chat`: the cost of one chat turn apart from generation, and the local model's speed.

Overhead = store the user turn + recall + build the prompt + store the reply, measured by
ChatService's own timings on a store of `size` generated memories (with cached embeddings), using
the real local backend asked for a single token so generation barely counts. Then the local model:
load time from its safetensors cache, time to first token for a ~300-token prompt, and tokens/s.
"""
from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from assistant.backends import GenerationOptions
from assistant.backends.local import LocalBackend
from assistant.chat import ChatService
from memory import corpus
from memory.bench import _records, corpus_vectors
from memory.embedding import Embedder
from memory.memory import Memory


def run_chat_bench(size: int, turns: int, cache_dir: Path, model_cache: Path, embedder: Embedder, progress) -> dict:
    texts = corpus.turns(size)
    vectors = corpus_vectors(embedder, texts, cache_dir, progress)
    work = Path(tempfile.mkdtemp(prefix="memchat-chat-bench-"))
    try:
        with Memory(work, embedder) as memory:
            memory.remember_many(_records(texts), vectors=vectors, batch_size=4096, progress=progress)
            backend = LocalBackend(None, model_cache)
            backend.load()  # converts the GGUF once if the cache is empty
            service = ChatService(memory, backend, k=5, options=GenerationOptions(greedy=True, max_new_tokens=1))
            questions = corpus.questions(turns + 5, seed=23)
            conversation = None
            overhead = []
            for n, question in enumerate(questions):
                reply = service.ask(question, conversation)
                conversation = reply.conversation_id if n % 10 else None  # a new conversation now and then
                if n >= 5:  # the first turns warm caches up
                    overhead.append(reply.timings["overhead_ms"])
                progress("chat turns", n + 1, len(questions))
        model = _local_model_speed(model_cache)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"size": size, "turns": len(overhead), "overhead_p50_ms": round(statistics.median(overhead), 2),
            "overhead_p95_ms": round(float(np.percentile(overhead, 95)), 2), **model}


def _local_model_speed(model_cache: Path) -> dict:
    started = time.perf_counter()
    backend = LocalBackend(None, model_cache)
    backend.load()
    load_s = time.perf_counter() - started
    import threading

    from assistant.backends import StreamState

    prompt = " ".join(corpus.turns(40))  # ~300 tokens of everyday text
    messages = [{"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": f"{prompt}\n\nSummarise the notes above."}]
    prompt_tokens = backend.count_tokens(prompt)
    first, rates = [], []
    for _ in range(3):
        state = StreamState()
        started = time.perf_counter()
        first_at = None
        for _chunk in backend.stream(messages, GenerationOptions(greedy=True, max_new_tokens=64), threading.Event(), state):
            first_at = first_at or time.perf_counter()
        total = time.perf_counter() - started
        first.append(first_at - started)
        rates.append(state.usage["completion_tokens"] / total)
    return {"model_load_s": round(load_s, 2), "prompt_tokens": prompt_tokens,
            "first_token_s": round(statistics.median(first), 3), "tokens_per_s": round(statistics.median(rates), 1)}
