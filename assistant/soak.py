"""`memchat bench --soak N`: a long simulated life through the real chat loop, watched as it goes.

N turns go through ChatService.ask (store the message, recall, build the prompt, store the reply)
on a fresh data dir, with a loopback backend that answers at once, so what is measured is
memchat, not a model. Interleaved, as a person's years would have them, at fixed shares of the
run (so a short run in the suite does all of it too): a conversation changes every 20 messages,
every 1/20 of the run one old conversation is forgotten, every 1/5 a JSONL export of 200 turns is
imported. Every 1/40: the process's resident memory (VmRSS), the p50 of 20 recalls, the store's
size. Growth is judged after warm-up (the first WARM_UP share of the run): resident memory may not
grow more than 10 % (also reported net of the vectors the index holds by design), and recall
latency may grow no faster than the store.
"""
from __future__ import annotations

import json
import random
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterator

from assistant.backends.base import GenerationOptions, StreamState, approx_tokens
from assistant.chat import ChatService
from memory import corpus
from memory.embedding import Embedder
from memory.io import read_records
from memory.memory import Memory
from memory.runtime import cpu
from memory.runtime.heap import resident_mb

WARM_UP = 0.2
SAMPLES, FORGETS, IMPORTS = 40, 20, 5  # per run
MIN_TURNS = 400


class LoopbackBackend:
    """Answers at once with a sentence built from the message: the chat loop without a model."""

    name = "loopback"
    model = "echo"
    supported_options = frozenset()

    def stream(self, messages: list[dict], options: GenerationOptions, cancel: threading.Event,
               state: StreamState) -> Iterator[str]:
        asked = messages[-1]["content"].split("\n")[-1][:120]
        state.usage = {"completion_tokens": 12}
        yield f"Noted: {asked}"

    def count_tokens(self, text: str) -> int:
        return approx_tokens(text)


def run_soak(turns: int, embedder: Embedder, progress, seed: int = 5) -> dict:
    rng = random.Random(seed)
    sample_every, forget_every, import_every = (_even(turns // n) for n in (SAMPLES, FORGETS, IMPORTS))
    work = Path(tempfile.mkdtemp(prefix="memchat-soak-"))
    messages = corpus.chat_turns(turns // 2 + 10)
    probes = corpus.questions(20, seed=41)
    samples = []
    started = time.perf_counter()
    try:
        with Memory(work / "data", embedder) as memory:
            service = ChatService(memory, LoopbackBackend(), k=3)
            conversation = None
            done = forgotten = imported = 0
            for n, text in enumerate(messages):
                if done >= turns:
                    break
                reply = service.ask(text, conversation)
                memory.embed_deferred()  # as every face does once the reply is shown
                conversation = None if n % 10 == 9 else reply.conversation_id  # 20 turns a conversation
                done += 2
                if done % forget_every == 0 and done > forget_every:
                    older = memory.conversations()[10:]  # not the latest ones
                    if older:
                        forgotten += memory.forget_conversation(rng.choice(older)["id"])
                if done % import_every == 0:
                    imported += _import_a_file(memory, work, done)
                if done % sample_every == 0:
                    latencies = []
                    for probe in probes:
                        t0 = time.perf_counter()
                        memory.recall(probe, k=10)
                        latencies.append((time.perf_counter() - t0) * 1000)
                    stats = memory.stats()
                    samples.append({"turns_through_chat": done, "stored": stats["turns"], "rss_mb": round(resident_mb(), 1),
                                    "index_mb": round(_index_mb(memory), 1),
                                    "recall_p50_ms": round(statistics.median(latencies), 2),
                                    "elapsed_s": round(time.perf_counter() - started, 1)})
                progress("soak", min(done, turns), turns)
            final = memory.stats()
            indexed, stored = final["indexed"], final["turns"]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    warm = [s for s in samples if s["turns_through_chat"] >= WARM_UP * turns] or samples
    base, end = warm[0], samples[-1]
    return {"machine": cpu.describe(), "turns_through_chat": done, "forgotten": forgotten, "imported": imported,
            "stored_at_end": stored, "indexed_at_end": indexed, "seconds": round(time.perf_counter() - started, 1),
            "rss_after_warm_up_mb": base["rss_mb"], "rss_end_mb": end["rss_mb"],
            "rss_growth_after_warm_up": round(end["rss_mb"] / base["rss_mb"] - 1, 4),
            "recall_p50_after_warm_up_ms": base["recall_p50_ms"], "recall_p50_end_ms": end["recall_p50_ms"],
            "store_growth_after_warm_up": round(end["stored"] / base["stored"], 2),
            # The bars: memory flat after warm-up (within 10 %), and recall latency growing
            # no faster than the store does.
            "rss_within_10_percent": end["rss_mb"] <= 1.10 * base["rss_mb"],
            # The vectors the index must hold grow with the store; growth beyond them is what a leak is.
            "rss_growth_beyond_index": round((end["rss_mb"] - end["index_mb"]) / (base["rss_mb"] - base["index_mb"]) - 1, 4),
            "rss_beyond_index_within_10_percent": end["rss_mb"] - end["index_mb"]
            <= 1.10 * (base["rss_mb"] - base["index_mb"]),
            "latency_within_store_growth": end["recall_p50_ms"] / base["recall_p50_ms"]
            <= max(1.0, end["stored"] / base["stored"]),
            "samples": samples}


def _index_mb(memory: Memory) -> float:
    """What the vector index holds by design: each vector's float32s and its int64 id."""
    dim = memory.store.dim or 0
    return memory.store.count() * (dim * 4 + 8) / 2**20


def _even(n: int) -> int:
    """Turns go through the chat loop two at a time (message, reply): intervals must be even."""
    return max(2, n - n % 2)


def _import_a_file(memory: Memory, work: Path, n: int) -> int:
    """Import 200 turns as a person importing an old export would: a JSONL file, read and validated."""
    from memory.turn import to_iso

    path = work / f"export-{n}.jsonl"
    with open(path, "w", encoding="utf-8") as out:
        for i, text in enumerate(corpus.chat_turns(200, seed=1000 + n)):
            out.write(json.dumps({"text": text, "role": "user" if i % 2 == 0 else "assistant",
                                  "conversation_id": f"old-{n}-{i // 20}",
                                  "created_at": to_iso(1_600_000_000 + n * 1000 + i)}) + "\n")
    records = read_records(path).records
    path.unlink()
    return memory.remember_many(records, total=len(records)).added


def soak_plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = result["samples"]
    x = [s["turns_through_chat"] for s in samples]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.plot(x, [s["rss_mb"] for s in samples], marker=".", label="resident memory")
    left.plot(x, [s["rss_mb"] - s.get("index_mb", 0) for s in samples], marker=".",
              label="less the vectors the index holds")
    left.axvline(WARM_UP * result["turns_through_chat"], color="grey", linestyle=":", label="end of warm-up")
    left.set(xlabel="turns through the chat loop", ylabel="resident memory (MB)", title="memory")
    left.legend()
    right.plot(x, [s["recall_p50_ms"] for s in samples], marker=".", label="recall p50 (ms)")
    twin = right.twinx()
    twin.plot(x, [s["stored"] for s in samples], color="tab:orange", label="turns stored")
    right.set(xlabel="turns through the chat loop", ylabel="recall p50 (ms)", title="recall latency and store size")
    twin.set_ylabel("turns stored")
    fig.suptitle(f"memchat soak: {result['turns_through_chat']} turns, {result['machine'].get('cpu', '')}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_soak(result: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "soak.json").write_text(json.dumps(result, indent=2))
    soak_plot(result, out / "soak.png")
