"""`memchat memory …`: each action opens the store, does one thing, prints."""
from __future__ import annotations

import sys
import time

from assistant.common import open_memory, print_json, read_text_arg
from assistant.config import Settings
from assistant.display import visible
from assistant.localtime import person_tz, shown_time
from assistant.progress import ProgressBar
from memory.errors import BadInput
from memory.timewindow import parse_window


def _time_filter(value: str | None, tz, end: bool) -> float | None:
    """--since / --until: ISO 8601 or words ("last monday"), in the person's time zone."""
    from memory.timewindow import parse_bound

    return None if value is None else parse_bound(value, time.time(), tz, end)


def _text_to_add(value: str) -> str:
    """`memory add`'s text: one turn of up to MAX_TURN_CHARS; longer, it says how to split it."""
    from memory.turn import MAX_TURN_CHARS, validate_text

    text = read_text_arg(value)
    if isinstance(text, str) and len(text) > MAX_TURN_CHARS:
        raise BadInput(f"text is {len(text):,} characters, over the limit of {MAX_TURN_CHARS:,} a turn holds; "
                       f"add it in parts, e.g.: split -C {MAX_TURN_CHARS} FILE part- && "
                       "for f in part-*; do memchat memory add - < \"$f\"; done")
    return validate_text(text, MAX_TURN_CHARS)


def _print_turn(turn, tz, score: float | None = None, newer=None) -> None:
    """`newer`: the turn that supersedes this one (memory/changes.py), shown with its date."""
    head = f"#{turn.id} [{turn.conversation_id}] {turn.role} {shown_time(turn.created_at, tz)}"
    if score is not None:
        head += f"  score {score:.4f}"
    if newer is not None:
        head += f"  superseded by #{newer.id} of {shown_time(newer.created_at, tz)}"
    if turn.pinned_at is not None:
        head += f"  pinned {shown_time(turn.pinned_at, tz)}"
    if turn.status != "ok":
        head += f"  ({turn.status})"
    print(head)
    print("  " + visible(turn.text).replace("\n", "\n  "))


def run_memory_command(args, settings: Settings) -> int:
    action = args.memory_command
    tz = person_tz(settings.tz)  # every time shown is local; --json keeps UTC ISO
    if action == "list" and args.profiles:
        return _list_profiles(settings, args.json)
    if action == "add":
        text = _text_to_add(args.text)  # before loading anything
    if action == "import":  # the whole file is checked before anything is opened
        from memory.io import exported_profile, read_records

        parsed = read_records(args.file, args.format)
        if settings.sources.get("profile") == "default":  # no profile chosen: the one the export names
            named = exported_profile(parsed.records, args.file)
            if named:
                settings.profile, settings.sources["profile"] = named, f"named by {args.file}"
    with ProgressBar() as bar, open_memory(settings, bar, check_model=action != "reembed") as memory:
        try:
            if action == "add":
                turn = memory.remember(text, role=args.role, conversation_id=args.conversation)
                if args.json:
                    print_json(turn.to_json())
                else:
                    print(f"stored turn {turn.id} in conversation {turn.conversation_id}")
            elif action == "search":
                from memory.recall import RecallFilter

                flt = RecallFilter(conversation_id=args.conversation, role=args.role,
                                   since=_time_filter(args.since, tz, end=False), until=_time_filter(args.until, tz, end=True))
                window = parse_window(args.query, time.time(), tz)  # "the repair last week": that week first
                hits = memory.recall(args.query, k=args.k, flt=flt, window=window)
                from memory.changes import supersessions

                superseded = supersessions(hits, memory.vectors(h.turn.id for h in hits))  # nothing is deleted
                by_id = {h.turn.id: h.turn for h in hits}
                if args.json:
                    print_json([{**h.to_json(), **({"superseded_by": superseded[h.turn.id]}
                                                   if h.turn.id in superseded else {})} for h in hits])
                else:
                    if window:
                        print(f"window: {window.label(tz)} ({window.phrase!r})")
                    for hit in hits:
                        _print_turn(hit.turn, tz, hit.score, by_id.get(superseded.get(hit.turn.id)))
                    if not hits:
                        print("no memories found")
            elif action == "list":
                if args.conversation:
                    rows = memory.turns(args.conversation, limit=args.limit)
                    if args.json:
                        print_json([t.to_json() for t in rows])
                    for turn in [] if args.json else rows:
                        _print_turn(turn, tz)
                else:
                    convs = memory.conversations()[: args.limit]
                    if args.json:
                        print_json(convs)
                    for c in [] if args.json else convs:
                        print(f"{c['id']}  {shown_time(c['updated_at'], tz)}  {c['turns']:>5} turns  {visible(c['title'])}")
            elif action == "show":
                found = [memory.get(i) for i in args.ids]
                if args.json:
                    print_json([t.to_json() for t in found])
                for turn in [] if args.json else found:
                    _print_turn(turn, tz)
            elif action == "forget":
                return _forget(memory, args)
            elif action in ("pin", "unpin", "pins"):
                _pins(memory, args, tz)
            elif action == "export":
                from memory.io import export_jsonl

                count = export_jsonl(memory, args.file, bar, profile=settings.profile)
                print(f"exported {count} turns of profile {settings.profile} to {args.file}")
            elif action == "import":
                result = memory.remember_many(parsed.records, total=len(parsed.records), progress=bar)
                if args.json:
                    print_json({"format": parsed.format, "profile": settings.profile, "added": result.added,
                                "skipped": result.skipped, "left_out": [item.to_json() for item in parsed.left_out]})
                else:
                    print(f"imported {result.added} turns from {args.file} ({parsed.format}) into profile "
                          f"{settings.profile}; {result.skipped} already stored")
                    for item in parsed.left_out:  # too long to store: say which, so it can be split
                        print(f"left out {item}")
            elif action == "stats":
                stats = {"profile": settings.profile, **memory.stats()}
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
        finally:  # a store that failed during the command (a hosted store is a cache: nothing was lost)
            for note in memory.take_notices():
                print(f"memchat: note: {note}", file=sys.stderr)
    return 0


def _list_profiles(settings: Settings, as_json: bool) -> int:
    from memory.profiles import profile_counts

    rows = profile_counts(settings.data_dir)
    if as_json:
        print_json(rows)
    for row in [] if as_json else rows:
        mark = "*" if row["profile"] == settings.profile else " "
        if row["turns"] is None:
            print(f"{mark} {row['profile']:<20} (cannot be read; try: memchat --profile {row['profile']} memory stats)")
        else:
            print(f"{mark} {row['profile']:<20} {row['conversations']:>6} conversations {row['turns']:>8} turns")
    if not rows and not as_json:
        print(f"no profiles yet in {settings.data_dir}")
    return 0


def _pins(memory, args, tz) -> None:
    """Standing memories (memory/pins.py): the turns that go into every prompt."""
    if args.memory_command == "pin":
        was = memory.get(args.id).pinned_at
        turn = memory.pin(args.id)
        if was is not None:
            print(f"turn {turn.id} is already a standing memory (pinned {shown_time(was, tz)})")
        else:
            print(f"pinned turn {turn.id}: it goes into every prompt from now on "
                  f"(`memchat memory unpin {turn.id}` stops that)")
    elif args.memory_command == "unpin":
        memory.unpin(args.id)
        print(f"unpinned turn {args.id}; it stays stored and can still be recalled "
              f"(`memchat memory forget {args.id}` erases it)")
    else:
        pinned = memory.pins()
        if args.json:
            print_json([t.to_json() for t in pinned])
        for turn in [] if args.json else pinned:
            _print_turn(turn, tz)
        if not pinned and not args.json:
            print("no standing memories yet; `memchat memory pin ID` keeps a turn of yours for every chat")


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
