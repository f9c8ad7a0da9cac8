"""`memchat eval repetition`: how often a model's replies repeat themselves, per decoding setting.

Each prompt of a file (data/repetition-prompts.txt: stories, lists, explanations, one a line) is
sent alone, in the prompt the chat builds for a message with nothing recalled, at the chat's own
decoding settings (sampling, its max_new_tokens), with a fixed seed per prompt and run, the same
seeds for every setting of the grid (repetition_penalty × no_repeat_ngram_size), so settings are
compared on the same draws.

A reply *loops* when some run of LOOP_WORDS words occurs LOOP_TIMES times or more in it ("the tree
was a white tree with a white face" three times over). Words, not tokens, so any model and backend
is measured alike. Reported per setting: the share of replies that loop, the mean share of a reply's
4-grams that repeat an earlier one (finer: it moves before a reply loops outright), the share cut at
the token limit (a loop runs until it is stopped) and the mean length in words.
"""
from __future__ import annotations

import re
import statistics
import threading
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

from memory.errors import BadInput

LOOP_WORDS = 4
LOOP_TIMES = 3


def load_prompts(path: Path) -> list[str]:
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: cannot read the prompts ({exc.__class__.__name__})") from None
    prompts = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not prompts:
        raise BadInput(f"{path}: no prompts (one a line; # starts a comment)")
    return prompts


def words(text: str) -> list[str]:
    return re.findall(r"\w+", text.casefold())


def _ngrams(said: list[str], n: int) -> Counter:
    return Counter(tuple(said[i:i + n]) for i in range(len(said) - n + 1))


def loops(text: str, n: int = LOOP_WORDS, times: int = LOOP_TIMES) -> bool:
    """Whether some run of n words occurs `times` times or more in the text."""
    counts = _ngrams(words(text), n)
    return bool(counts) and max(counts.values()) >= times


def repeated_share(text: str, n: int = LOOP_WORDS) -> float:
    """The share of the text's n-grams that repeat an earlier one (0 for a text without repeats)."""
    counts = _ngrams(words(text), n)
    total = sum(counts.values())
    return (total - len(counts)) / total if total else 0.0


def run_repetition_eval(prompts: list[str], backend, options, grid: list[tuple[float, int]], seeds: int,
                        progress, token_budget: int = 2048, tz=None) -> dict:
    """Every prompt × seed at every (repetition_penalty, no_repeat_ngram_size) of the grid."""
    from assistant.prompt import build_prompt

    now = time.time()
    asked = [build_prompt(p, [], [], token_budget, backend.count_tokens, now=now, tz=tz)[0] for p in prompts]
    total, done = len(grid) * len(prompts) * seeds, 0
    settings = []
    for penalty, n in grid:
        rows = []
        for s in range(seeds):
            for i, messages in enumerate(asked):
                from assistant.backends.base import StreamState

                state = StreamState()
                run = replace(options, repetition_penalty=penalty, no_repeat_ngram_size=n, seed=1000 * s + i)
                text = "".join(backend.stream(messages, run, threading.Event(), state))
                rows.append({"prompt": prompts[i], "seed": run.seed, "reply": text, "loops": loops(text),
                             "repeated": round(repeated_share(text), 4), "cut": state.finish_reason == "length",
                             "words": len(words(text))})
                done += 1
                progress(f"penalty {penalty}, n-gram {n}", done, total)
        settings.append({"repetition_penalty": penalty, "no_repeat_ngram_size": n, "replies": len(rows),
                         "looping": _share(r["loops"] for r in rows),
                         "repeated_4grams": round(statistics.mean(r["repeated"] for r in rows), 4),
                         "cut": _share(r["cut"] for r in rows),
                         "words_mean": round(statistics.mean(r["words"] for r in rows), 1), "rows": rows})
    return {"backend": backend.name, "model": backend.model, "prompts": len(prompts), "seeds": seeds,
            "temperature": None if options.greedy else options.temperature, "greedy": options.greedy,
            "max_new_tokens": options.max_new_tokens, "loop": f"{LOOP_WORDS} words {LOOP_TIMES}+ times",
            "settings": settings}


def _share(flags) -> float:
    flags = list(flags)
    return round(sum(flags) / len(flags), 4) if flags else 0.0


def show_repetition_eval(args, settings) -> int:
    """The `memchat eval repetition` command: run the grid, print a table (or JSON with every reply)."""
    from assistant.backends import GenerationOptions, create_backend
    from assistant.common import print_json
    from assistant.localtime import person_tz
    from assistant.progress import ProgressBar
    from memory.runtime import cpu

    prompts = load_prompts(args.file)[: args.max_questions]
    backend = create_backend(settings)
    options = GenerationOptions.from_settings(settings)
    if args.max_new_tokens:
        options = replace(options, max_new_tokens=args.max_new_tokens)
    grid = [(p, n) for p in (args.penalties or [settings.repetition_penalty])
            for n in (args.ngrams or [settings.no_repeat_ngram_size])]
    with ProgressBar(enabled=not args.json) as bar:
        result = run_repetition_eval(prompts, backend, options, grid, args.seeds, bar,
                                     settings.token_budget, person_tz(settings.tz))
    result["machine"] = cpu.describe()
    if args.json:
        print_json(result)
        return 0
    how = "greedy" if options.greedy else f"temperature {options.temperature}, top-p {options.top_p}, top-k {options.top_k}"
    print(f"{result['backend']} ({result['model']}), {len(prompts)} prompts x {args.seeds} seeds, {how}, "
          f"{options.max_new_tokens} new tokens at most; a reply loops when {result['loop']}")
    print(f"  {'penalty':>7} {'n-gram':>6} {'looping':>8} {'repeated 4-grams':>17} {'cut at limit':>13} {'words':>6}")
    for row in result["settings"]:
        print(f"  {row['repetition_penalty']:>7} {row['no_repeat_ngram_size']:>6} {row['looping']:>8.0%} "
              f"{row['repeated_4grams']:>17.1%} {row['cut']:>13.0%} {row['words_mean']:>6}")
    return 0
