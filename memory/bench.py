"""`memchat bench`: the same memories in each store at each size, measured end to end.

Per store and size: ingest_per_s (turns embedded and stored per second through the normal import
path, on a sample of chat-shaped turns: corpus.chat_turns), search_p50_ms / search_p95_ms (one query end to end: embed it, hybrid search,
fetch rows), recall_at_10 (the index's top 10 against exact search over the same vectors),
disk_bytes (everything in the store's data dir) and cold_open_s (open a closed store, index load
included). Corpus embeddings are computed once and cached, so bigger sizes reuse smaller ones.
"""
from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from memory import corpus
from memory.embedding import Embedder
from memory.memory import Memory
from memory.turn import NewTurn


@dataclass
class BenchConfig:
    stores: list[str] = field(default_factory=lambda: ["faiss"])
    sizes: list[int] = field(default_factory=lambda: [1000, 10000])
    queries: int = 200
    ingest_sample: int = 2000
    index_kind: str = "auto"
    cache_dir: Path | None = None
    store_options: dict = field(default_factory=dict)  # per store, as Memory takes them


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def corpus_vectors(embedder: Embedder, texts: list[str], cache_dir: Path | None, progress) -> np.ndarray:
    """Embeddings of the corpus, from the cache where it holds a long enough prefix."""
    cache = None
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        cache = cache_dir / f"corpus-{embedder.model_id.replace('/', '_')}-{embedder.dtype}.npy"
        if cache.exists():
            cached = np.load(cache)
            if len(cached) >= len(texts):
                return cached[: len(texts)]
    vectors = []
    step = 2048
    for start in range(0, len(texts), step):
        vectors.append(embedder.encode(texts[start : start + step], batch_size=128))
        progress("embedding corpus", min(start + step, len(texts)), len(texts))
    result = np.vstack(vectors)
    if cache is not None:
        np.save(cache, result)
    return result


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def bench_records(texts: list[str]) -> list[NewTurn]:
    base = 1_700_000_000.0
    return [NewTurn(text=t, role="user" if i % 2 == 0 else "assistant", conversation_id=f"bench-{i // 40}",
                    created_at=base + i * 60) for i, t in enumerate(texts)]


def measure(store: str, size: int, texts, vectors, queries, embedder, config: BenchConfig, progress) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"memchat-bench-{store}-"))
    options = {"faiss": {"kind": config.index_kind}, **config.store_options}
    try:
        ingest_per_s = _ingest_rate(store, options, embedder, min(config.ingest_sample, size), progress)
        memory = Memory(work, embedder, store=store, store_options=options)
        memory.remember_many(bench_records(texts[:size]), total=size, progress=progress,
                             vectors=vectors[:size], batch_size=2048)
        memory.close()

        started = time.perf_counter()
        memory = Memory(work, embedder, store=store, store_options=options)
        cold_open_s = time.perf_counter() - started

        for q in queries[:5]:  # warm-up: first calls pay for lazy initialisation
            memory.recall(q, k=10)
        latencies = []
        for n, q in enumerate(queries):
            started = time.perf_counter()
            memory.recall(q, k=10)
            latencies.append((time.perf_counter() - started) * 1000)
            if n % 20 == 0:
                progress(f"searching {store} @ {size}", n + 1, len(queries))

        # ANN quality: the store's top 10 against exact inner-product search on the same vectors.
        exact_matrix = vectors[:size]
        overlaps = []
        qvecs = embedder.encode(queries)
        for qvec in qvecs:
            got, _ = memory.store.search(qvec, 10)
            truth = np.argsort(-(exact_matrix @ qvec))[:10] + 1  # vector ids are 1-based row numbers
            overlaps.append(len(set(got.tolist()) & set(truth.tolist())) / 10)
        index_kind = getattr(memory.store, "index_kind", store)
        # Where the vectors lived: a remote store's row is that service's (or stand-in's) speed, and
        # its disk_bytes are SQLite's alone.
        location = getattr(memory.store, "location", "data dir")
        remote = bool(getattr(memory.store, "remote", False))
        memory.close()
        return {
            "store": store, "size": size, "index": index_kind, "location": location, "remote": remote,
            "ingest_per_s": round(ingest_per_s, 1),
            "search_p50_ms": round(statistics.median(latencies), 2),
            "search_p95_ms": round(_percentile(latencies, 95), 2),
            "recall_at_10": round(float(np.mean(overlaps)), 4),
            "disk_bytes": _dir_bytes(work),
            "cold_open_s": round(cold_open_s, 3),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _ingest_rate(store: str, options: dict, embedder: Embedder, sample: int, progress) -> float:
    """Turns per second through the normal import path (split, embed, SQLite, index) into an empty
    store, on text shaped like real chat (corpus.chat_turns), not the short generated lines."""
    work = Path(tempfile.mkdtemp(prefix=f"memchat-ingest-{store}-"))
    try:
        texts = corpus.chat_turns(sample)
        embedder.encode(texts[:64])  # warm-up: the first batches pay for lazy initialisation
        with Memory(work, embedder, store=store, store_options=options) as memory:
            started = time.perf_counter()
            memory.remember_many(bench_records(texts), total=sample, progress=progress)
            return sample / (time.perf_counter() - started)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def machine() -> dict:
    """The CPU model, its vector extensions, cores, torch's threads: every figure names its machine."""
    from memory.runtime import cpu

    return cpu.describe()


def run(config: BenchConfig, embedder: Embedder, progress) -> dict:
    texts = corpus.turns(max(config.sizes))
    vectors = corpus_vectors(embedder, texts, config.cache_dir, progress)
    queries = corpus.questions(config.queries)
    results = [measure(store, size, texts, vectors, queries, embedder, config, progress)
               for store in config.stores for size in sorted(config.sizes)]
    return {"machine": machine(), "embed_model": embedder.model_id, "embed_dtype": embedder.dtype,
            "embed_engine_one_text": embedder.engine, "queries": config.queries,
            "ingest_sample": config.ingest_sample, "results": results}
