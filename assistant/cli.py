"""The `memchat` command: a thin shell over Memory and the chat service.

Expected failures print one line to stderr (`memchat: error: ...`) and exit non-zero (2 for bad
input, a mistyped command or a number out of range included); they never print a traceback.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from assistant.config import CONFIG_DIR_ENV, MEMORY_MODES, RANGES, load_settings, range_error

LARGEST_ID = 2**63 - 1  # SQLite's largest integer


class _Parser(argparse.ArgumentParser):
    """A usage mistake is one line, like every other memchat error, pointing at --help."""

    def error(self, message: str):
        self.exit(2, f"memchat: error: {message} (see `{self.prog} --help`)\n")


def number(low: int | float, high: int | float, kind: type = int):
    """An argparse type: a `kind` within low..high, else an error naming the range."""
    def parse(raw: str):
        try:
            value = kind(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{raw!r} is not {'a whole' if kind is int else 'a'} number") from None
        problem = range_error(value, low, high)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return value
    return parse


def setting(name: str):
    """The type for a flag that sets a setting: the range config.RANGES gives it."""
    low, high = RANGES[name]
    return number(low, high, type(low))


def setting_list(name: str):
    """A comma-separated list of values for a setting, each within its config.RANGES range."""
    one = setting(name)

    def parse(raw: str) -> list:
        values = [one(part) for part in raw.split(",") if part.strip()]
        if not values:
            raise argparse.ArgumentTypeError("give at least one value")
        return values
    return parse


def numbers(low: int, high: int):
    """A comma-separated list of whole numbers, each within low..high."""
    one = number(low, high)

    def parse(raw: str) -> list[int]:
        values = [one(part) for part in raw.split(",") if part.strip()]
        if not values:
            raise argparse.ArgumentTypeError("give at least one number")
        return values
    return parse


def _common() -> argparse.ArgumentParser:
    from memory.stores import STORES

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--env-file", type=Path, default=argparse.SUPPRESS, metavar="PATH",
                        help="read settings from this .env file (default: the .env in memchat's config dir, "
                             "e.g. ~/.config/memchat/.env; never one in the current directory)")
    common.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS,
                        help="where memories live (default: $MEMCHAT_DATA_DIR or the platform's user data dir)")
    common.add_argument("--profile", default=argparse.SUPPRESS, metavar="NAME",
                        help="whose memory: each profile is a separate store, and nothing of one is seen "
                             "from another (default: $MEMCHAT_PROFILE or 'default')")
    common.add_argument("--store", default=argparse.SUPPRESS, choices=list(STORES),
                        help="vector store (default: the one this data dir uses; faiss for a new one); "
                             "`memchat doctor` lists each with its settings")
    return common


def build_parser() -> argparse.ArgumentParser:
    from assistant.backends import BACKENDS
    from memory.stores import STORES

    common = _common()
    parser = _Parser(
        prog="memchat", parents=[common],
        description="A terminal assistant that remembers: every turn is embedded, stored and recalled.",
        epilog="Run `memchat COMMAND --help` for a command's options.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    # -- memory ------------------------------------------------------------------------------
    memory = commands.add_parser("memory", parents=[common], help="inspect, search, edit, export and import memories",
                                 description="Inspect, search, edit, export and import the memory store.")
    mem = memory.add_subparsers(dest="memory_command", metavar="ACTION", required=True)

    p = mem.add_parser("add", parents=[common], help="store one turn")
    p.add_argument("text", help="the text to remember, or - to read it from stdin")
    p.add_argument("--role", default="user", choices=["user", "assistant", "system"])
    p.add_argument("--conversation", help="conversation id (default: a new conversation)")
    p.add_argument("--json", action="store_true", help="print the stored turn as JSON")

    p = mem.add_parser("search", parents=[common], help="hybrid search (meaning + words) over all memories")
    p.add_argument("query")
    p.add_argument("-k", type=number(1, 1000), default=10, help="number of hits (default 10)")
    p.add_argument("--conversation", help="only this conversation")
    p.add_argument("--role", choices=["user", "assistant", "system"], help="only this role")
    p.add_argument("--since", help="only turns at or after this time: ISO 8601 (local unless it has an offset) "
                                   "or words: 'last monday', '2 weeks ago'")
    p.add_argument("--until", help="only turns before this time: ISO 8601, or words ('yesterday': up to its end)")
    p.add_argument("--json", action="store_true", help="print a JSON list of hits")

    p = mem.add_parser("list", parents=[common], help="list conversations, or the turns of one, or the profiles")
    p.add_argument("--conversation", help="list this conversation's turns")
    p.add_argument("--profiles", action="store_true", help="list this data dir's profiles with their counts")
    p.add_argument("-n", "--limit", type=number(1, 1_000_000), default=50)
    p.add_argument("--json", action="store_true")

    p = mem.add_parser("show", parents=[common], help="show turns by id")
    p.add_argument("ids", nargs="+", type=number(1, LARGEST_ID))
    p.add_argument("--json", action="store_true")

    p = mem.add_parser("forget", parents=[common],
                       help="erase turns from the store, the index and the files' bytes")
    p.add_argument("ids", nargs="*", type=number(1, LARGEST_ID), help="turn ids to forget")
    p.add_argument("--conversation", help="forget a whole conversation")
    p.add_argument("--all", action="store_true", help="forget everything")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")

    p = mem.add_parser("pin", parents=[common], help="keep one of your turns for every chat (a standing memory)",
                       description="Pin a turn you said as a standing memory: an instruction or preference "
                                   "(\"always give me distances in km\", \"I'm vegetarian\") that goes into "
                                   "every prompt, whatever the question, within MEMCHAT_PIN_TOKENS. Forgetting "
                                   "the turn removes the pin.")
    p.add_argument("id", type=number(1, LARGEST_ID), help="the turn's id (memory search, list or show give it)")
    p = mem.add_parser("unpin", parents=[common], help="stop keeping a turn for every chat (the turn stays stored)",
                       description="Take a standing memory out of every prompt; the turn stays stored and "
                                   "recallable (`memchat memory forget ID` erases it).")
    p.add_argument("id", type=number(1, LARGEST_ID), help="the pinned turn's id (memory pins lists them)")
    p = mem.add_parser("pins", parents=[common], help="list the standing memories, newest pin first",
                       description="List the standing memories (pinned turns), newest pin first, with when each "
                                   "was said and pinned, in your time zone.")
    p.add_argument("--json", action="store_true", help="print them as JSON (times in UTC)")

    p = mem.add_parser("export", parents=[common], help="write every turn of the profile to a JSONL file (lossless; "
                                                        "each line names the profile)")
    p.add_argument("file", type=Path)

    p = mem.add_parser("import", parents=[common],
                       help="import memchat JSONL, a ChatGPT or Claude export, or LoCoMo JSON",
                       description="Import into the profile given by --profile or $MEMCHAT_PROFILE; without "
                                   "either, a memchat export goes back into the profile it names, anything "
                                   "else into 'default'. FILE may be a ChatGPT or Claude conversations.json, "
                                   "or the export's .zip as downloaded (its conversations.json is read). "
                                   "Claude's export: claude.ai → Settings → Privacy → Export data; a link to "
                                   "the .zip comes by email. Importing a file again adds only what is new.")
    p.add_argument("file", type=Path)
    p.add_argument("--format", choices=["jsonl", "chatgpt", "claude", "locomo"], help="default: detected from the file")
    p.add_argument("--json", action="store_true")

    p = mem.add_parser("stats", parents=[common], help="counts, sizes, model and data dir")
    p.add_argument("--json", action="store_true")

    mem.add_parser("reindex", parents=[common], help="rebuild the vector index from the SQLite record")
    p = mem.add_parser("migrate", parents=[common], help="move the vectors to another store (no re-embedding)",
                       description="Copy every vector from the SQLite record into another store and make it "
                                   "this data dir's store from now on.")
    p.add_argument("--to", required=True, choices=list(STORES))
    mem.add_parser("reembed", parents=[common],
                   help="re-embed every turn with the configured embedding model (MEMCHAT_EMBED_MODEL)")

    # -- bench -------------------------------------------------------------------------------
    p = commands.add_parser("bench", parents=[common], help="measure ingest, search latency and recall per store and size",
                            description="Generate a corpus, embed it once (cached), and measure each store at each size.")
    p.add_argument("--stores", default="faiss", help=f"comma-separated stores, of {','.join(STORES)} (default: faiss); a hosted "
                        "store joins only when its service is configured")
    p.add_argument("--sizes", type=numbers(1, 10_000_000), default="1000,10000",
                   help="comma-separated memory counts (default: 1000,10000)")
    p.add_argument("--queries", type=number(1, 100_000), default=200, help="queries per measurement (default 200)")
    p.add_argument("--ingest-sample", type=number(1, 1_000_000), default=2000,
                   help="turns pushed through the full import path to measure ingest_per_s (default 2000)")
    p.add_argument("--index", default="auto", choices=["auto", "flat", "ivf"], help="FAISS index kind (default auto)")
    p.add_argument("--embed-limit", type=number(1, 10_000_000), default=100_000, metavar="N",
                   help="embed at most N corpus texts (cached); rows past N get synthetic vectors clustered "
                        "around embedded ones, and the report says so (default 100000)")
    p.add_argument("--chat", action="store_true",
                   help="instead: one chat turn's overhead (store, recall, prompt, store) at the largest size, "
                        "and the local model's load time, first-token time and tokens/s")
    p.add_argument("--busy-cores", type=number(0, 64), default=0, metavar="N",
                   help="--chat: also measure each engine while N other processes keep a core busy each, and "
                        "report the slowdown (default 0: idle only)")
    p.add_argument("--pause", type=number(0, 60, float), default=0.0, metavar="SECONDS",
                   help="--chat: wait this long before each turn, as a person reading the reply (default 0: back to back)")
    p.add_argument("--model", help="--chat: the local model to measure, a name from `memchat model list` or a GGUF "
                                   "path (default: the local model in use)")
    p.add_argument("--soak", type=number(1, 10_000_000), metavar="TURNS",
                   help="instead: push TURNS turns through the chat loop (a loopback model), forgetting and "
                        "importing as it goes, and sample resident memory and recall latency (soak.json, soak.png)")
    _add_embed_provider(p)
    p.add_argument("--out", type=Path, help="also write results.json (and bench.png) here")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p = commands.add_parser("eval", parents=[common], help="measure recall (LoCoMo), answers (fact/question cases) "
                            "or how often replies repeat themselves",
                            description="locomo: turn-level evidence recall@k on LoCoMo, through the normal recall "
                                        "path. answers: tell every case's facts to a fresh store, ask each question "
                                        "in a new conversation through the chat loop, and report the share of "
                                        "answers that state the expected fact, the share whose fact was recalled, "
                                        "and the latency (data/answer-cases.jsonl is memchat's own set). "
                                        "repetition: send each prompt alone at the chat's decoding settings, per "
                                        "repetition setting of --penalties x --ngrams, and report the share of "
                                        "replies in which a run of 4 words recurs 3 or more times.")
    p.add_argument("benchmark", choices=["locomo", "answers", "repetition"])
    p.add_argument("file", type=Path, help="a LoCoMo JSON file (e.g. ../shared/data/locomo/locomo-dev.json), "
                                           "a JSONL file of answer cases (e.g. data/answer-cases.jsonl), or for "
                                           "repetition a text file of prompts, one a line (data/repetition-prompts.txt)")
    p.add_argument("-k", type=number(1, 1000),
                   help="locomo: hits per question (default 10); answers: memories recalled per "
                   "reply (default: the chat setting, 3)")
    p.add_argument("--max-questions", type=number(1, 1_000_000), help="stop after this many questions or cases")
    _add_embed_provider(p)
    p.add_argument("--signals", choices=["hybrid", "fusion", "dense", "lexical"], default="hybrid",
                   help="locomo: hybrid (default: dense + lexical fused, plus neighbouring turns), fusion (without "
                        "the neighbours), dense or lexical alone; for comparisons")
    p.add_argument("--answers", action="store_true",
                   help="locomo: answer the questions instead (no memory / memchat's recall / the annotated "
                        "evidence), scored with LoCoMo's token F1; 60 questions unless --max-questions")
    p.add_argument("--reach", action="store_true",
                   help="locomo: the share of each question's evidence that reaches the prompt the chat builds "
                        "(its k notes within the token budgets), instead of recall@k")
    p.add_argument("--pin", action="store_true",
                   help="answers: pin the instruction cases' instructions (standing memories, in every prompt) "
                        "before asking; without it they reach a prompt only when recalled. locomo --reach: keep "
                        "every statement memchat would propose as a standing memory")
    p.add_argument("--backend", choices=list(BACKENDS), help="answers: the model backend (default: local, or $MEMCHAT_BACKEND)")
    p.add_argument("--model", help="answers: model for the backend")
    p.add_argument("--max-new-tokens", type=setting("max_new_tokens"),
                   help="answers: reply length cap (default 48); repetition: default the chat's (256)")
    _add_repetition_options(p)
    p.add_argument("--penalties", type=setting_list("repetition_penalty"),
                   help="repetition: the repetition penalties to measure, e.g. 1.0,1.1,1.2,1.3 (default: the setting)")
    p.add_argument("--ngrams", type=setting_list("no_repeat_ngram_size"),
                   help="repetition: the no-repeat n-gram sizes to measure, e.g. 0,3,4 (default: the setting)")
    p.add_argument("--seeds", type=number(1, 100), default=1,
                   help="repetition: sampled replies per prompt and setting, seeds 0.. (default 1)")
    p.add_argument("--json", action="store_true", help="print the result as JSON (answers: with every reply)")

    # -- ask / chat / doctor ------------------------------------------------------------------
    p = commands.add_parser("ask", parents=[common], help="ask once: the reply streams to stdout",
                            description="Store the message, recall related memories, stream the reply, store it "
                                        "(nothing is stored with --memory session or off, or --no-store).")
    p.add_argument("text", help="the message, or - to read it from stdin")
    _add_chat_options(p)
    where = p.add_mutually_exclusive_group()
    where.add_argument("-c", "--continue", dest="continue_", action="store_true", help="continue the latest conversation")
    where.add_argument("--cid", help="continue this conversation")
    p.add_argument("--no-recall", "--no-memory", dest="no_memory", action="store_true",
                   help="recall nothing from the store for this reply")
    p.add_argument("--no-store", action="store_true",
                   help="keep this message and its reply out of memory (nothing of them is written)")
    p.add_argument("--show-memories", action="store_true", help="print the recalled memories to stderr after the reply")
    p.add_argument("--timings", action="store_true", help="print where the time went to stderr")
    p.add_argument("--json", action="store_true", help="print one JSON object at the end instead of streaming")

    p = commands.add_parser("chat", parents=[common], help="open the terminal chat app (the default command)")
    _add_chat_options(p)

    from assistant.mcp_command import add_mcp_parser

    add_mcp_parser(commands, common)

    from assistant.model_commands import add_model_parser

    add_model_parser(commands, common)

    commands.add_parser("doctor", parents=[common], help="show the effective configuration and what is ready",
                        description="Settings (keys hidden) and where each came from, the data dir, store counts, "
                                    "and which backends are ready.")
    return parser


def _add_embed_provider(p: argparse.ArgumentParser) -> None:
    from memory.remote_embedding import PROVIDERS

    p.add_argument("--embed-provider", choices=PROVIDERS,
                   help="embed with local (default, or $MEMCHAT_EMBED_PROVIDER) or a provider's API; the model is "
                        "$MEMCHAT_EMBED_MODEL or the provider's default")


def _add_chat_options(p: argparse.ArgumentParser) -> None:
    from assistant.backends import BACKENDS

    p.add_argument("--backend", choices=list(BACKENDS), help="model backend (default: local, or $MEMCHAT_BACKEND)")
    p.add_argument("--model", help="model for the backend (default: the backend's default)")
    p.add_argument("--memory", dest="memory_mode", choices=MEMORY_MODES,
                   help="persistent: every turn is stored and recalled (default, or $MEMCHAT_MEMORY); session: "
                        "incognito, the conversation is recalled from but nothing of it is written to disk; "
                        "off: each message answered alone, nothing recalled or stored")
    p.add_argument("-k", type=setting("k"), dest="k",
                   help="memories recalled per reply (default 3; 0 recalls nothing)")
    p.add_argument("--token-budget", type=setting("token_budget"), help="prompt token budget (default 2048)")
    p.add_argument("--pin-tokens", type=setting("pin_tokens"),
                   help="of the budget, at most this many tokens of standing memories (default 200; 0: none)")
    p.add_argument("--temperature", type=setting("temperature"))
    p.add_argument("--top-p", type=setting("top_p"))
    p.add_argument("--top-k", type=setting("top_k"))
    p.add_argument("--max-new-tokens", type=setting("max_new_tokens"))
    p.add_argument("--seed", type=setting("seed"))
    p.add_argument("--greedy", action="store_true", default=None, help="always pick the most likely token")
    p.add_argument("--stop", action="append", metavar="TEXT",
                   help="end the reply before TEXT; give it up to 4 times (default: none, or $MEMCHAT_STOP, a JSON "
                        "list); the gemini, hf and openai backends take it, the local model does not")
    _add_repetition_options(p)


def _add_repetition_options(p: argparse.ArgumentParser) -> None:
    from assistant.backends import GenerationOptions

    p.add_argument("--repetition-penalty", type=setting("repetition_penalty"), metavar="P",
                   help="make tokens already in the reply (never the prompt's) less likely by a factor P "
                        f"(1.0-2.0; 1.0 is off; default {GenerationOptions.repetition_penalty}, or "
                        "$MEMCHAT_REPETITION_PENALTY); the local model, and the servers behind the hf and "
                        "openai backends (their own definition), honour it; gemini does not")
    p.add_argument("--no-repeat-ngram", dest="no_repeat_ngram_size", type=setting("no_repeat_ngram_size"), metavar="N",
                   help="never repeat a run of N tokens within a reply (0 is off; default "
                        f"{GenerationOptions.no_repeat_ngram_size}, or $MEMCHAT_NO_REPEAT_NGRAM); the local model only")


CHAT_FLAGS = ("backend", "model", "memory_mode", "k", "token_budget", "pin_tokens", "temperature", "top_p", "top_k", "max_new_tokens", "seed", "greedy", "stop",
              "repetition_penalty", "no_repeat_ngram_size")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = None
    try:
        overrides = {name: getattr(args, name, None) for name in ("data_dir", "profile", "store", "embed_provider", *CHAT_FLAGS)}
        if args.command == "eval":
            overrides["k"] = None  # eval's -k means hits per question for locomo; run_eval reads it
        settings = load_settings(overrides, getattr(args, "env_file", CONFIG_DIR_ENV))
        if args.command == "memory":
            from assistant.memory_commands import run_memory_command

            return run_memory_command(args, settings)
        if args.command == "bench":
            from assistant.measure import run_bench

            return run_bench(args, settings)
        if args.command == "eval":
            from assistant.measure import run_eval

            return run_eval(args, settings)
        if args.command == "ask":
            from assistant.ask import run_ask

            return run_ask(args, settings)
        if args.command == "mcp":
            from assistant.mcp_server import run_mcp

            return run_mcp(args, settings)
        if args.command == "model":
            from assistant.model_commands import run_model_command

            return run_model_command(args, settings)
        if args.command == "doctor":
            from assistant.doctor import run_doctor

            return run_doctor(settings)
        from assistant.tui.app import run_app

        return run_app(settings)
    except KeyboardInterrupt:
        print("memchat: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `memchat … | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
    except Exception as exc:  # expected failures carry exit_code; anything else is a bug: re-raise
        from memory.errors import storage_failure

        if getattr(exc, "exit_code", None) is None:
            exc = storage_failure(exc, settings.data_dir if settings else "the data dir") or exc
        code = getattr(exc, "exit_code", None)
        if code is None:
            raise
        print(f"memchat: error: {exc}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
