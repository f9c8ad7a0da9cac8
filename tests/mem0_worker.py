"""The mem0 side of tests/compare_mem0.py; runs in the throwaway venv's python, never in .venv.

    python -I tests/mem0_worker.py IN.json OUT.json

IN (written by compare_mem0): {"k", "model_path", "work_dir", "samples": [{"sample_id",
"turns": [{"text", "dia_id"}], "questions": [{"question", ...}]}]} — the turn texts memchat's
memory.io.locomo_turns makes, so both sides store the same strings. For each sample: a fresh
mem0 Memory (raw mode: add(..., infer=False); FAISS; the huggingface embedder on the packaged
all-MiniLM-L6-v2 directory), every turn added with its dia_id in metadata, then every question
searched with top_k=k. OUT: the dia_ids retrieved per question (compare_mem0 scores them with
memory.evaluate.evidence_recall), timings, and what was checked about the environment.

No model is ever called: the LLM slot holds an OpenAI config aimed at a closed local port, and the
instance's llm is replaced by a guard that raises if anything asks it for a response. Telemetry is
off (MEM0_TELEMETRY=False, set by compare_mem0 before mem0 is imported), and every socket
connection or DNS look-up is refused and counted, so "sent nothing" is measured, not assumed.
Only the standard library and mem0 (with its own dependencies) are imported here.
"""
from __future__ import annotations

import json
import os
import socket
import sys
import time

NETWORK_ATTEMPTS: list[str] = []


def _guard_network() -> None:
    """Refuse, and note, every attempt to reach another machine (or a local port)."""
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def refuse(where: str):
        NETWORK_ATTEMPTS.append(where)
        raise OSError(f"compare_mem0: network refused ({where})")

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            refuse(f"connect {address!r}")
        return real_connect(self, address)

    def connect_ex(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            refuse(f"connect_ex {address!r}")
        return real_connect_ex(self, address)

    def getaddrinfo(host, *args, **kwargs):
        refuse(f"getaddrinfo {host!r}")

    socket.socket.connect = connect
    socket.socket.connect_ex = connect_ex
    socket.getaddrinfo = getaddrinfo


class NoLLM:
    """Stands in for mem0's LLM: raw mode must never ask it anything."""

    calls = 0

    def generate_response(self, *args, **kwargs):
        NoLLM.calls += 1
        raise RuntimeError("compare_mem0: an LLM call was attempted in raw mode")


def mem0_config(model_path: str, sample_dir: str, dims: int) -> dict:
    return {
        "vector_store": {"provider": "faiss", "config": {
            "collection_name": "compare", "path": os.path.join(sample_dir, "faiss"),
            "embedding_model_dims": dims,  # distance_strategy: mem0's default (euclidean)
        }},
        "embedder": {"provider": "huggingface", "config": {
            "model": model_path, "embedding_dims": dims,
            "model_kwargs": {"device": "cpu", "local_files_only": True},
        }},
        # mem0 insists on an LLM config; this one can only fail fast, and is replaced by NoLLM.
        "llm": {"provider": "openai", "config": {"api_key": "unused-raw-mode",
                                                 "openai_base_url": "http://127.0.0.1:9/v1"}},
        "history_db_path": os.path.join(sample_dir, "history.db"),
    }


def run(spec: dict) -> dict:
    if os.environ.get("MEM0_TELEMETRY", "").lower() not in ("false", "0", "no"):
        raise SystemExit("mem0_worker: set MEM0_TELEMETRY=False before running (compare_mem0 does)")
    _guard_network()
    started = time.perf_counter()
    import mem0
    from mem0 import Memory
    from mem0.memory import telemetry

    k, model_path, work = int(spec["k"]), spec["model_path"], spec["work_dir"]
    if spec.get("torch_threads"):
        import torch

        torch.set_num_threads(int(spec["torch_threads"]))
    out = {"mem0_version": getattr(mem0, "__version__", "?"), "mem0_file": mem0.__file__,
           "torch_threads": spec.get("torch_threads"),
           "telemetry_enabled": bool(telemetry.MEM0_TELEMETRY), "samples": []}
    for number, sample in enumerate(spec["samples"]):
        sample_dir = os.path.join(work, f"sample-{number}")
        os.makedirs(sample_dir, exist_ok=True)
        config = mem0_config(model_path, sample_dir, int(spec.get("dims", 384)))
        memory = Memory.from_config(config)
        memory.llm = NoLLM()
        if number == 0:
            out["config"] = config
            st = memory.embedding_model.model
            import sentence_transformers
            import torch
            out["max_seq_length"] = st.max_seq_length
            out["sentence_transformers"] = f"{sentence_transformers.__version__} ({sentence_transformers.__file__})"
            out["torch"] = f"{torch.__version__} ({torch.__file__})"
            out["startup_s"] = round(time.perf_counter() - started, 2)
            memory.embedding_model.embed("warm up")  # first-call costs out of the import timing
        tokenizer = memory.embedding_model.model.tokenizer
        window = memory.embedding_model.model.max_seq_length
        # Turns whose tokens (with [CLS]/[SEP]) exceed the window: mem0 embeds only the first window.
        long_turns = sum(1 for t in sample["turns"]
                         if len(tokenizer(t["text"], add_special_tokens=True)["input_ids"]) > window)

        t0 = time.perf_counter()
        for turn in sample["turns"]:
            memory.add(turn["text"], user_id="compare", metadata={"dia_id": turn["dia_id"]}, infer=False)
        import_s = time.perf_counter() - t0

        questions, latencies, loose = [], [], []
        for qa in sample["questions"]:
            t1 = time.perf_counter()
            hits = memory.search(qa["question"], top_k=k, filters={"user_id": "compare"})["results"]
            latencies.append((time.perf_counter() - t1) * 1000)
            questions.append([(h.get("metadata") or {}).get("dia_id") for h in hits])
            # `search(limit=k)`, the 1.x spelling: 2.x takes top_k and lets `limit` fall into
            # **kwargs unread, so this returns top_k's default (20). Kept apart, to show the effect.
            hits = memory.search(qa["question"], limit=k, filters={"user_id": "compare"})["results"]
            loose.append([(h.get("metadata") or {}).get("dia_id") for h in hits])
        stored = memory.vector_store.index.ntotal
        memory.close()
        out["samples"].append({
            "sample_id": sample["sample_id"], "turns": len(sample["turns"]), "stored": stored,
            "long_turns": long_turns, "import_s": round(import_s, 3), "retrieved": questions,
            "search_ms": [round(x, 2) for x in latencies], "retrieved_with_limit_kwarg": loose,
        })
    out["llm_calls"] = NoLLM.calls
    out["network_attempts"] = NETWORK_ATTEMPTS
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[0], encoding="utf-8") as f:
        spec = json.load(f)
    result = run(spec)
    with open(argv[1], "w", encoding="utf-8") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
