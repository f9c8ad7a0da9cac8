"""`memchat bench` and `memchat eval`: run a measurement from memory/ (which returns numbers)
and show it here: a table, JSON, a plot."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from assistant.common import print_json
from assistant.config import Settings, store_options
from assistant.progress import ProgressBar


def run_bench(args, settings: Settings) -> int:
    if args.soak:
        return _run_soak(args, settings)
    if args.chat:
        from assistant.chat_bench import run_chat_bench

        size = max(args.sizes)
        with ProgressBar(enabled=not args.json) as bar:
            result = run_chat_bench(size, args.queries, settings.data_dir / "bench-cache", settings.models_dir,
                                    settings.embedder(), bar, model=settings.model, busy_cores=args.busy_cores,
                                    pause=args.pause)
        if args.json:
            print_json(result)
        else:
            for key, value in result.items():
                if key in ("engines", "engines_with_busy_cores"):
                    print(f"{key}:")
                    for runtime, figures in value.items():
                        print(f"{runtime:>16}: " + ", ".join(f"{k} {v}" for k, v in figures.items()))
                else:
                    print(f"{key:>16}: {value}")
        return 0
    from memory.bench import BenchConfig, run

    config = BenchConfig(
        stores=_bench_stores(args.stores, store_options(settings)),
        sizes=args.sizes,
        queries=args.queries, ingest_sample=args.ingest_sample, index_kind=args.index, embed_limit=args.embed_limit,
        cache_dir=settings.data_dir / "bench-cache",
        store_options=store_options(settings),
    )
    with ProgressBar(enabled=not args.json) as bar:
        results = run(config, settings.embedder(), bar)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps(results, indent=2))
        plot(results, args.out / "bench.png")
    if args.json:
        print_json(results)
    else:
        render_table(results)
    return 0


def _run_soak(args, settings: Settings) -> int:
    from assistant.soak import MIN_TURNS, run_soak
    from memory.errors import BadInput

    if args.soak < MIN_TURNS:
        raise BadInput(f"--soak needs at least {MIN_TURNS} turns (it samples 40 times a run)")
    with ProgressBar(enabled=not args.json) as bar:
        result = run_soak(args.soak, settings.embedder(), bar)
    if args.out is not None:
        from assistant.soak import write_soak

        write_soak(result, args.out)
    if args.json:
        print_json(result)
    else:
        for key, value in result.items():
            if key not in ("samples", "machine"):
                print(f"{key:>28}: {value}")
        print(f"{'cpu':>28}: {result['machine']['cpu']} ({', '.join(result['machine']['extensions'])})")
    return 0


def _bench_stores(names: str, options: dict) -> list[str]:
    """The stores to measure: known ones, and hosted ones only where their service is configured."""
    from memory.errors import BadInput
    from memory.stores import STORES

    chosen = []
    for name in (n.strip() for n in names.split(",") if n.strip()):
        if name not in STORES:
            raise BadInput(f"unknown vector store {name!r}; available: {', '.join(STORES)}")
        spec = STORES[name]
        if spec.configured(options.get(name, {})):
            chosen.append(name)
        else:
            print(f"memchat: {name} skipped: set {spec.settings[spec.requires]} to measure it", file=sys.stderr)
    return chosen


def run_eval(args, settings: Settings) -> int:
    if args.benchmark == "answers":
        return _run_answer_eval(args, settings)
    if args.benchmark == "repetition":
        from assistant.repetition_eval import show_repetition_eval

        return show_repetition_eval(args, settings)
    if args.answers:
        return _run_locomo_answers(args, settings)
    if args.reach:
        return _run_prompt_reach(args, settings)
    from memory.evaluate import evaluate, load_locomo
    from memory.recall import RecallWeights

    samples = load_locomo(args.file)
    weights = {"hybrid": RecallWeights(), "fusion": RecallWeights(context=0.0),
               "dense": RecallWeights.only("dense"), "lexical": RecallWeights.only("lexical")}[args.signals]
    embedder = settings.embedder()
    k = args.k or 10
    with ProgressBar(enabled=not args.json) as bar:
        result = evaluate(samples, embedder, k=k, store=settings.store, weights=weights,
                          max_questions=args.max_questions, progress=bar).to_json()
    if args.json:
        print_json(result)
        return 0
    print(f"recall@{result['k']} = {result['recall']:.4f} over {result['questions']} questions "
          f"({args.signals}); search p50 {result['search_p50_ms']} ms, p95 {result['search_p95_ms']} ms")
    for name, row in result["by_category"].items():
        print(f"  {name:>12}: {row['recall']:.4f}  ({row['questions']} questions)")
    if len(result["by_conversation"]) > 1:
        print("  by conversation: " + ", ".join(f"{name} {row['recall']:.3f}" for name, row in result["by_conversation"].items()))
    return 0


def _run_prompt_reach(args, settings: Settings) -> int:
    from assistant.prompt_reach import prompt_reach
    from memory.evaluate import load_locomo

    samples = load_locomo(args.file)
    k = args.k or settings.k
    with ProgressBar(enabled=not args.json) as bar:
        result = prompt_reach(samples, settings.embedder(), k, settings.token_budget, settings.pin_tokens, args.pin,
                              store=settings.store or "faiss", progress=bar)
    if args.json:
        print_json(result)
        return 0
    print(f"evidence in the prompt for {result['reach']:.1%} of {result['questions']} questions ({k} notes"
          f"{', and every statement memchat proposes kept as a standing memory' if args.pin else ''})")
    for name, row in result["by_category"].items():
        print(f"  {name:>14}: {row['reach']:.1%}  ({row['questions']} questions)")
    if args.pin:
        print(f"  {result['pins_kept']} statements kept, {result['pins_that_are_evidence']} of them a question's evidence")
    return 0


def _run_answer_eval(args, settings: Settings) -> int:
    from assistant.answer_eval import load_cases, run_answer_eval
    from assistant.backends import GenerationOptions, create_backend
    from memory.runtime import cpu

    cases = load_cases(args.file)[: args.max_questions]
    backend = create_backend(settings)
    # Greedy, so a run is repeatable; 48 tokens hold a fact and keep the eval minutes long on 2 cores.
    options = GenerationOptions(greedy=True, max_new_tokens=args.max_new_tokens or 48,
                                repetition_penalty=settings.repetition_penalty,
                                no_repeat_ngram_size=settings.no_repeat_ngram_size)
    service_options = {"k": args.k or settings.k, "token_budget": settings.token_budget, "options": options,
                       "pin_tokens": settings.pin_tokens}
    with ProgressBar(enabled=not args.json) as bar:
        result = run_answer_eval(cases, settings.embedder(), backend, service_options, bar, store=settings.store or "faiss",
                                 pin=args.pin)
    result["machine"] = cpu.describe()
    if args.json:
        print_json(result)
        return 0
    print(f"{result['backend']} ({result['model']}): {result['stated']:.0%} of {result['cases']} answers state the "
          f"expected fact; its fact was recalled for {result['recalled']:.0%}; "
          f"{result['stated_when_recalled']:.0%} right when recalled")
    print(f"  (greedy, {options.max_new_tokens} tokens, repetition penalty {options.repetition_penalty}, "
          f"no-repeat n-gram {options.no_repeat_ngram_size})")
    print(f"  first token p50 {result['first_token_p50_ms']} ms, whole reply p50 {result['seconds_p50']} s")
    for style, row in result["by_style"].items():
        print(f"  {style:>10}: {row['stated']:.0%} of {row['cases']}")
    if result["pinned"]:
        print("  (the instruction cases' instructions were pinned: standing memories in every prompt)")
    wrong = [r for r in result["rows"] if not r["stated"]]
    for row in wrong[:10]:
        print(f"  ✗ {row['question']} — expected {row['expect'][0]!r}, got {row['answer'][:100]!r}"
              f"{'' if row['recalled'] else ' (fact not recalled)'}")
    return 0


def _run_locomo_answers(args, settings: Settings) -> int:
    from assistant.backends import create_backend
    from assistant.locomo_answers import MODES, run_locomo_answers
    from memory.evaluate import load_locomo
    from memory.runtime import cpu

    samples = load_locomo(args.file)
    backend = create_backend(settings)
    k = args.k or settings.k
    with ProgressBar(enabled=not args.json) as bar:
        result = run_locomo_answers(samples, settings.embedder(), backend, k, args.max_questions or 60,
                                    args.max_new_tokens or 32, bar)
    result["machine"] = cpu.describe()
    if args.json:
        print_json(result)
        return 0
    print(f"{result['backend']} ({result['model']}), {result['questions']} LoCoMo questions, token F1:")
    for mode in MODES:
        print(f"  {mode:>10}: {result['f1'][mode]:.3f}   (reply p50 {result['seconds_p50'][mode]} s)")
    print(f"  evidence among the {k} recalled notes: {result['evidence_recalled']:.0%}")
    for name, row in result["by_category"].items():
        print(f"  {name:>12} ({row['questions']}): " + ", ".join(f"{m} {row[m]:.3f}" for m in MODES))
    return 0


def plot(report: dict, path: Path) -> None:
    """Two panels: search latency against size per store, and recall@10 against latency."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for n, store in enumerate(dict.fromkeys(r["store"] for r in report["results"])):
        color = f"C{n}"
        rows = sorted((r for r in report["results"] if r["store"] == store), key=lambda r: r["size"])
        if "local mode" in rows[0].get("location", ""):
            store = f"{store} (local mode)"
        sizes = [r["size"] for r in rows]
        left.plot(sizes, [r["search_p50_ms"] for r in rows], marker="o", color=color, label=f"{store} p50")
        left.plot(sizes, [r["search_p95_ms"] for r in rows], marker="x", linestyle="--", color=color,
                  label=f"{store} p95")
        right.scatter([r["search_p50_ms"] for r in rows], [r["recall_at_10"] for r in rows], color=color, label=store)
        for r in rows:
            right.annotate(f"{r['size']:,}", (r["search_p50_ms"], r["recall_at_10"]), fontsize=8,
                           textcoords="offset points", xytext=(4, 4))
    left.set(xscale="log", xlabel="memories", ylabel="one recall end to end (ms)", title="latency vs size")
    right.set(xlabel="search p50 (ms)", ylabel="recall@10 vs exact", title="recall vs latency")
    left.legend(fontsize=8)
    right.legend(fontsize=8)
    machine = report["machine"]
    fig.suptitle(f"memchat bench · {report['embed_model']} · {machine['cores']} cores · {machine['cpu']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def render_table(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"memchat bench ({report['embed_model']}, {report['queries']} queries)")
    columns = {"store": "store", "index": "index", "size": "memories", "ingest_per_s": "ingest/s",
               "search_p50_ms": "p50 ms", "search_p95_ms": "p95 ms", "recall_at_10": "recall@10",
               "disk_bytes": "disk MB", "cold_open_s": "open s", "forget_one_s": "forget s",
               "resident_mb": "RSS MB"}
    for key, header in columns.items():
        table.add_column(header, justify="left" if key in ("store", "index") else "right")
    for row in report["results"]:
        disk = f"{row['disk_bytes'] / 1e6:,.1f}" + ("*" if row.get("remote") else "")
        cells = dict(row, size=f"{row['size']:,}", disk_bytes=disk)
        table.add_row(*[str(cells.get(key, "")) for key in columns])
    console = Console()
    console.print(table)
    if report.get("plain_st_per_s"):
        console.print(f"  plain sentence-transformers float32 embeds the ingest sample at {report['plain_st_per_s']}/s; "
                      "ingest/s against it: " + ", ".join(f"{r['store']} {r['ingest_vs_plain_st']}x" for r in report["results"]),
                      highlight=False, soft_wrap=True)
        console.print(f"  it embeds one query in {report['plain_st_query_ms']} ms; a whole search (p50) against that: "
                      + ", ".join(f"{r['store']} @ {r['size']:,} {r['search_vs_plain_query']}x" for r in report["results"]),
                      highlight=False, soft_wrap=True)
    if report.get("synthetic_rows"):
        console.print(f"  rows past the first {report['embedded_rows']:,} hold synthetic vectors clustered around "
                      "embedded ones (embedding them all would take hours here); see memory/bench.py",
                      highlight=False, soft_wrap=True)
    for store, location in {r["store"]: r.get("location", "data dir") for r in report["results"]}.items():
        console.print(f"  {store}: {location_note(location)}", highlight=False, soft_wrap=True)
    if any(r.get("remote") for r in report["results"]):
        console.print("  * disk: SQLite's share only; the vectors live in the service", highlight=False, soft_wrap=True)


def location_note(location: str) -> str:
    """Where a store's row was measured, saying so when it is not a hosted service's speed."""
    from urllib.parse import urlsplit

    host = urlsplit(location).hostname if "://" in location else None
    if host in ("127.0.0.1", "localhost", "::1"):
        return f"{location} (a loopback server: a stand-in or your own, not the hosted service's speed)"
    return location
