"""`memchat bench`: the same memories in each store at each size, measured end to end.

Per store and size: ingest_per_s (turns embedded and stored per second through the normal import
path, on a sample of chat-shaped turns: corpus.chat_turns) and ingest_vs_plain_st (that against
plain sentence-transformers float32 embedding the same texts, `plain_st`), search_p50_ms / search_p95_ms (one query end to end: embed it, hybrid search,
fetch rows) and search_vs_plain_query (that p50 against plain sentence-transformers embedding one
query alone), recall_at_10 (the top 10 recall's dense search gets, against exact search over the
same vectors: from a compressed index, its candidates re-scored exactly) and index_recall_at_10
(the index's own top 10), disk_bytes (everything in the store's data dir), cold_open_s (open a closed store, index load
included), forget_one_s (forget one turn, until its text and vector are gone from disk: median of
three) and resident_mb (peak resident memory of a fresh process that opens the store and recalls
20 times: the embedder, no chat model). Corpus embeddings are computed once and cached, so bigger
sizes reuse smaller ones.

Embedding a million texts takes hours on two cores, so only the first `embed_limit` texts are
embedded; past that, each row gets a synthetic vector: a random embedded one plus Gaussian noise
(cosine ~0.9 to it, renormalised, seeded). The index then holds clusters shaped like real
embeddings, at the real dimension, and recall@10 is still judged against exact search over the
same vectors. The report says how many rows were synthetic.
"""
from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from memory import corpus
from memory.embedding import Embedder
from memory.memory import Memory
from memory.recall import CANDIDATES
from memory.runtime import torch_thread
from memory.runtime.heap import resident_mb
from memory.turn import NewTurn


@dataclass
class BenchConfig:
    stores: list[str] = field(default_factory=lambda: ["faiss"])
    sizes: list[int] = field(default_factory=lambda: [1000, 10000])
    queries: int = 200
    ingest_sample: int = 2000
    index_kind: str = "auto"
    embed_limit: int = 100_000  # rows past this get synthetic clustered vectors (see above)
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


# Noise per dimension for synthetic vectors: a unit vector plus N(0, s^2) in d dimensions has cosine
# ~1/sqrt(1 + d*s^2) to the original; 0.9 is about how close a paraphrase's embedding lands.
SYNTHETIC_COSINE = 0.9


def synthetic_vectors(real: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """`count` unit vectors clustered around random rows of `real` (see the module docstring)."""
    rng = np.random.default_rng(seed)
    dim = real.shape[1]
    scale = np.sqrt((1 / SYNTHETIC_COSINE**2 - 1) / dim)
    out = np.empty((count, dim), dtype=np.float32)
    for start in range(0, count, 65_536):
        end = min(start + 65_536, count)
        chunk = real[rng.integers(0, len(real), end - start)] + rng.normal(0, scale, (end - start, dim))
        out[start:end] = chunk / np.linalg.norm(chunk, axis=1, keepdims=True)
    return out


def bench_vectors(embedder: Embedder, texts: list[str], embed_limit: int, cache_dir: Path | None,
                  progress) -> np.ndarray:
    """Real embeddings for the first `embed_limit` texts, synthetic ones for the rest."""
    real = corpus_vectors(embedder, texts[:embed_limit], cache_dir, progress)
    if len(texts) <= embed_limit:
        return real
    progress("placing synthetic vectors", 0, 1)
    return np.vstack([real, synthetic_vectors(real, len(texts) - embed_limit)])


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

        for q in corpus.questions(5, seed=97):  # warm-up (first calls pay for lazy initialisation), with
            memory.recall(q, k=10)  # other questions: the timed ones must not find their vectors cached
        latencies = []
        for n, q in enumerate(queries):
            started = time.perf_counter()
            memory.recall(q, k=10)
            latencies.append((time.perf_counter() - started) * 1000)
            if n % 20 == 0:
                progress(f"searching {store} @ {size}", n + 1, len(queries))

        # ANN quality against exact inner-product search on the same vectors: the store's own top 10,
        # and the top 10 recall gets from it (a compressed index's candidates re-scored exactly, as
        # recall.dense_candidates does with SQLite's float32 copy: here the same vectors, in memory).
        exact_matrix = vectors[:size]
        overlaps, reranked = [], []
        qvecs = embedder.encode(queries)
        for qvec in qvecs:
            truth = set((np.argpartition(-(exact_matrix @ qvec), 10)[:10] + 1).tolist())  # ids: 1-based rows
            got, _ = memory.store.search(qvec, 10)
            overlaps.append(len(set(got.tolist()) & truth) / 10)
            if memory.store.approximate:
                got, _ = memory.store.search(qvec, 2 * CANDIDATES)
                got = got[np.argsort(-(exact_matrix[got - 1] @ qvec), kind="stable")[:10]]
            reranked.append(len(set(got.tolist()) & truth) / 10)
        index_kind = memory.store.index_kind
        forget_s = []
        for turn_id in (1, size // 2, size):  # a turn early, in the middle, and the latest
            started = time.perf_counter()
            memory.forget([turn_id])
            forget_s.append(time.perf_counter() - started)
        progress(f"resident memory {store} @ {size}", 0, 1)
        # Where the vectors lived: a remote store's row is that service's (or stand-in's) speed, and
        # its disk_bytes are SQLite's alone.
        location, remote = memory.store.location, memory.store.remote
        memory.close()
        resident = resident_memory(work, store, options, embedder, queries[:20])
        return {
            "store": store, "size": size, "index": index_kind, "location": location, "remote": remote,
            "ingest_per_s": round(ingest_per_s, 1),
            "search_p50_ms": round(statistics.median(latencies), 2),
            "search_p95_ms": round(_percentile(latencies, 95), 2),
            "recall_at_10": round(float(np.mean(reranked)), 4),  # what recall's dense search gets
            "index_recall_at_10": round(float(np.mean(overlaps)), 4),
            "disk_bytes": _dir_bytes(work),
            "cold_open_s": round(cold_open_s, 3),
            "forget_one_s": round(statistics.median(forget_s), 3),
            "forget_one_max_s": round(max(forget_s), 3),
            "resident_mb": resident["peak_mb"],
            "synthetic_vectors": max(0, size - config.embed_limit),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def resident_memory(work: Path, store: str, options: dict, embedder: Embedder, queries: list[str]) -> dict:
    """Peak and current resident memory of a fresh process that opens the store and recalls: what
    a person's memchat holds for its memory (the embedder included, no chat model). Measured for
    the local embedder only: a provider's key is not handed to a child process."""
    if not isinstance(embedder, Embedder):
        return {"peak_mb": None, "now_mb": None}
    args = {"dir": str(work), "store": store, "options": options, "model": embedder.model_id,
            "dtype": embedder.dtype, "cache_dir": str(embedder.cache_dir) if embedder.cache_dir else None,
            "queries": queries}
    root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, "-c", "from memory.bench import _resident_probe; _resident_probe()",
                           json.dumps(args, default=str)], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _resident_probe() -> None:
    """The child of resident_memory: open, recall, print {peak_mb, now_mb} as JSON."""
    args = json.loads(sys.argv[1])
    embedder = Embedder(args["model"], dtype=args["dtype"], cache_dir=args["cache_dir"] and Path(args["cache_dir"]))
    with Memory(Path(args["dir"]), embedder, store=args["store"], store_options=args["options"]) as memory:
        for query in args["queries"]:
            memory.recall(query, k=10)
    print(json.dumps({"peak_mb": round(resident_mb("VmHWM"), 1), "now_mb": round(resident_mb(), 1)}))


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


def plain_st(embedder: Embedder, sample: int, queries: list[str]) -> tuple[float | None, float | None]:
    """Plain sentence-transformers in float32 at its defaults, in this process: texts per second
    embedding the ingest sample (batch 32), the baseline an import is compared with, and the
    median ms of embedding one query, the baseline a whole recall is compared with (#26). Plain
    ST truncates a text at the model's window where an import embeds every window, so the import
    ratio errs against memchat. (None, None) for a provider's model (no local weights to load)."""
    if not isinstance(embedder, Embedder):
        return None, None
    from sentence_transformers import SentenceTransformer

    texts = corpus.chat_turns(sample)
    # On memchat's torch thread: a second thread using torch would run a second OpenMP team.
    model = torch_thread.run(lambda: SentenceTransformer(str(embedder._source()), device="cpu").float())
    torch_thread.run(model.encode, texts[:64], show_progress_bar=False)  # warm-up, as _ingest_rate does
    started = time.perf_counter()
    torch_thread.run(model.encode, texts, normalize_embeddings=True, show_progress_bar=False)
    rate = sample / (time.perf_counter() - started)
    one = []
    for query in queries:
        started = time.perf_counter()
        torch_thread.run(model.encode, [query], normalize_embeddings=True, show_progress_bar=False)
        one.append((time.perf_counter() - started) * 1000)
    return rate, statistics.median(one)


def machine() -> dict:
    """The CPU model, its vector extensions, cores, torch's threads: every figure names its machine."""
    from memory.runtime import cpu

    return cpu.describe()


def run(config: BenchConfig, embedder: Embedder, progress) -> dict:
    texts = corpus.turns(max(config.sizes))
    vectors = bench_vectors(embedder, texts, config.embed_limit, config.cache_dir, progress)
    queries = corpus.questions(config.queries)
    results = [measure(store, size, texts, vectors, queries, embedder, config, progress)
               for store in config.stores for size in sorted(config.sizes)]
    plain, plain_query_ms = plain_st(embedder, min(config.ingest_sample, max(config.sizes)), queries)
    for row in results:
        row["ingest_vs_plain_st"] = round(row["ingest_per_s"] / plain, 2) if plain else None
        row["search_vs_plain_query"] = round(row["search_p50_ms"] / plain_query_ms, 2) if plain_query_ms else None
    return {"machine": machine(), "embed_model": embedder.model_id, "embed_dtype": embedder.dtype,
            "embed_engine_one_text": embedder.engine, "queries": config.queries,
            "ingest_sample": config.ingest_sample, "plain_st_per_s": plain and round(plain, 1),
            "plain_st_query_ms": plain_query_ms and round(plain_query_ms, 2), "embedded_rows": min(config.embed_limit, max(config.sizes)),
            "synthetic_rows": max(0, max(config.sizes) - config.embed_limit), "results": results}
