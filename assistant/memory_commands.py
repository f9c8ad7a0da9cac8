"""`memchat memory …` and `memchat bench`: each action opens the store, does one thing, prints."""
from __future__ import annotations

import sys

from assistant.cli import open_memory, print_json
from assistant.config import Settings, store_options
from assistant.display import visible
from assistant.progress import ProgressBar
from memory.errors import BadInput

def read_text_arg(value: str) -> str:
    if value != "-":
        return value
    try:
        return sys.stdin.buffer.read().decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput("stdin is not valid UTF-8; nothing stored") from None


def _time_filter(value: str | None, flag: str) -> float | None:
    from memory.turn import from_iso

    if value is None:
        return None
    try:
        return from_iso(value)
    except ValueError:
        raise BadInput(f"{flag} {value!r} is not an ISO 8601 time (e.g. 2026-05-01 or 2026-05-01T09:30)") from None


def _print_turn(turn, score: float | None = None) -> None:
    head = f"#{turn.id} [{turn.conversation_id}] {turn.role} {turn.created_iso[:19]}"
    if score is not None:
        head += f"  score {score:.4f}"
    if turn.status != "ok":
        head += f"  ({turn.status})"
    print(head)
    print("  " + visible(turn.text).replace("\n", "\n  "))


def run_memory_command(args, settings: Settings) -> int:
    action = args.memory_command
    if action == "add":
        from memory.turn import validate_text

        text = validate_text(read_text_arg(args.text))  # before loading anything
    with ProgressBar() as bar, open_memory(settings, bar, check_model=action != "reembed") as memory:
        if action == "add":
            turn = memory.remember(text, role=args.role, conversation_id=args.conversation)
            if args.json:
                print_json(turn.to_json())
            else:
                print(f"stored turn {turn.id} in conversation {turn.conversation_id}")
        elif action == "search":
            from memory.recall import RecallFilter

            flt = RecallFilter(conversation_id=args.conversation, role=args.role,
                               since=_time_filter(args.since, "--since"), until=_time_filter(args.until, "--until"))
            hits = memory.recall(args.query, k=args.k, flt=flt)
            if args.json:
                print_json([h.to_json() for h in hits])
            else:
                for hit in hits:
                    _print_turn(hit.turn, hit.score)
                if not hits:
                    print("no memories found")
        elif action == "list":
            if args.conversation:
                rows = memory.turns(args.conversation, limit=args.limit)
                if args.json:
                    print_json([t.to_json() for t in rows])
                for turn in [] if args.json else rows:
                    _print_turn(turn)
            else:
                convs = memory.conversations()[: args.limit]
                if args.json:
                    print_json(convs)
                for c in [] if args.json else convs:
                    from memory.turn import to_iso

                    print(f"{c['id']}  {to_iso(c['updated_at'])[:19]}  {c['turns']:>5} turns  {visible(c['title'])}")
        elif action == "show":
            found = [memory.get(i) for i in args.ids]
            if args.json:
                print_json([t.to_json() for t in found])
            for turn in [] if args.json else found:
                _print_turn(turn)
        elif action == "forget":
            return _forget(memory, args)
        elif action == "export":
            from memory.io import export_jsonl

            count = export_jsonl(memory, args.file, bar)
            print(f"exported {count} turns to {args.file}")
        elif action == "import":
            from memory.io import read_records

            fmt, records = read_records(args.file, args.format)
            result = memory.remember_many(records, total=len(records), progress=bar)
            if args.json:
                print_json({"format": fmt, "added": result.added, "skipped": result.skipped})
            else:
                print(f"imported {result.added} turns from {args.file} ({fmt}); "
                      f"{result.skipped} already stored")
        elif action == "stats":
            stats = memory.stats()
            if args.json:
                print_json(stats)
            else:
                for key, value in stats.items():
                    print(f"{key:>14}: {value}")
        elif action == "reindex":
            memory.sync_index(bar, force=True)
            print(f"rebuilt the {memory.store_name} index: {memory.store.count()} vectors")
        elif action == "migrate":
            count = memory.migrate_store(args.to, bar)
            print(f"{memory.store_name} now holds this store's {count} vectors (copied from SQLite, not re-embedded)")
        elif action == "reembed":
            count = memory.reembed(bar)
            print(f"re-embedded {count} turns with {memory.embedder.model_id}")
    return 0


def _forget(memory, args) -> int:
    chosen = sum(bool(x) for x in (args.ids, args.conversation, args.all))
    if chosen != 1:
        raise BadInput("say what to forget: turn ids, --conversation ID, or --all (exactly one)")
    if args.all:
        what = f"ALL {memory.stats()['turns']} memories"
    elif args.conversation:
        what = f"conversation {args.conversation}"
    else:
        what = f"{len(args.ids)} turn(s)"
    if not args.yes:
        if not sys.stdin.isatty():
            raise BadInput(f"refusing to forget {what} without confirmation; add --yes")
        answer = input(f"Forget {what}? This cannot be undone. [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing forgotten")
            return 1
    if args.all:
        count = memory.forget_all()
    elif args.conversation:
        count = memory.forget_conversation(args.conversation)
    else:
        count = memory.forget(args.ids)
    print(f"forgot {count} turn(s)")
    return 0


def run_bench(args, settings: Settings) -> int:
    if args.chat:
        from assistant.chat_bench import run_chat_bench

        size = max(int(s) for s in args.sizes.split(",") if s.strip())
        with ProgressBar(enabled=not args.json) as bar:
            result = run_chat_bench(size, args.queries, settings.data_dir / "bench-cache", settings.models_dir,
                                    settings.embedder(), bar)
        if args.json:
            print_json(result)
        else:
            for key, value in result.items():
                print(f"{key:>16}: {value}")
        return 0
    from memory.bench import BenchConfig, run, render_table

    config = BenchConfig(
        stores=[s.strip() for s in args.stores.split(",") if s.strip()],
        sizes=[int(s) for s in args.sizes.split(",") if s.strip()],
        queries=args.queries, ingest_sample=args.ingest_sample, index_kind=args.index,
        cache_dir=settings.data_dir / "bench-cache", out_dir=args.out,
        store_options=store_options(settings),
    )
    with ProgressBar(enabled=not args.json) as bar:
        results = run(config, settings.embedder(), bar)
    if args.json:
        print_json(results)
    else:
        render_table(results)
    return 0


def run_eval(args, settings: Settings) -> int:
    from memory.evaluate import evaluate, load_locomo
    from memory.recall import RecallWeights

    samples = load_locomo(args.file)
    weights = {"hybrid": RecallWeights(), "fusion": RecallWeights(context=0.0),
               "dense": RecallWeights.only("dense"), "lexical": RecallWeights.only("lexical")}[args.signals]
    embedder = settings.embedder()
    with ProgressBar(enabled=not args.json) as bar:
        result = evaluate(samples, embedder, k=args.k, store=settings.store, weights=weights,
                          max_questions=args.max_questions, progress=bar).to_json()
    if args.json:
        print_json(result)
        return 0
    print(f"recall@{result['k']} = {result['recall']:.4f} over {result['questions']} questions "
          f"({args.signals}); search p50 {result['search_p50_ms']} ms, p95 {result['search_p95_ms']} ms")
    for name, row in result["by_category"].items():
        print(f"  {name:>12}: {row['recall']:.4f}  ({row['questions']} questions)")
    return 0
