"""kill -9 at random moments of import, chat turn, forget, re-embed and migrate (#12).

    python -m tests.crash_trials --trials 100      (make crash-trials)

Each trial starts one real `memchat` command on a data dir shared by all trials, kills it with
SIGKILL at a random moment (or lets it finish first), then checks the data dir as the person
would find it next:

- SQLite's integrity_check and FTS5's integrity-check pass;
- the memory opens (catching its index up), and indexed == vectors, every turn has a vector;
- every turn memchat reported as stored is there, and nothing it reported forgotten came back;
- a killed forget removed all of its conversation or none of it; a killed import stored whole
  batches; a killed re-embed finishes when run again (the documented recovery), a killed migrate
  leaves the data dir on one store or the other.

tests/test_crash_trials.py runs five, one of each, killed while the work is visibly under way.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from memory.memory import IMPORT_BATCH

REPO = Path(__file__).resolve().parent.parent
MEMCHAT = [sys.executable, "-m", "assistant.cli"]
OPERATIONS = ("import", "ask", "forget", "reembed", "migrate")
IMPORT_TURNS = 2 * IMPORT_BATCH + 300  # two whole batches (memory.remember_many) and a short one
# Longest plausible run of each command on 2 cores; random kills fall in [0.3 s, this].
WINDOW_S = {"import": 14.0, "ask": 8.0, "forget": 6.0, "reembed": 30.0, "migrate": 10.0}


class TrialFailed(AssertionError):
    pass


@dataclass
class Outcome:
    operation: str
    killed: bool
    seconds: float
    problems: list[str] = field(default_factory=list)


class CrashTrials:
    def __init__(self, work: Path, model_cache: Path, seed: int, gemini_url: str, log=print):
        from memory.embedding import _packaged_model_dir

        self.work, self.rng, self.log = Path(work), random.Random(seed), log
        self.data_dir = self.work / "data"
        # Two identities of the packaged model, so each re-embed has every turn to redo.
        self.models = [str(_packaged_model_dir("all-MiniLM-L6-v2")), str(self.work / "second-model")]
        if not Path(self.models[1]).exists():
            shutil.copytree(self.models[0], self.models[1])
        self.model = 0  # index into self.models: what the store is embedded with
        self.store = "faiss"
        self.env = dict(os.environ, MEMCHAT_DATA_DIR=str(self.data_dir), MEMCHAT_MODEL_CACHE=str(model_cache),
                        HF_HUB_OFFLINE="1", MEMCHAT_BACKEND="gemini", GEMINI_API_KEY="crash-trial-key",
                        MEMCHAT_GEMINI_BASE_URL=gemini_url)
        self.env.pop("MEMCHAT_STORE", None)
        self.present: set[str] = set()  # texts memchat said it stored
        self.forgotten: set[str] = set()  # conversations memchat said it forgot
        self.trial = 0
        self._embedders: dict[str, object] = {}

    # -- one trial ----------------------------------------------------------------------------------
    def run(self, operation: str, kill_after: float | None = None, kill_when=None) -> Outcome:
        """Start `operation`, kill it after `kill_after` s or once `kill_when(self)` is true, check."""
        self.trial += 1
        command, env, on_success = getattr(self, f"_{operation}")()
        started = time.monotonic()
        proc = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, start_new_session=True)
        killed = False
        while proc.poll() is None:
            waited = time.monotonic() - started
            if (kill_after is not None and waited >= kill_after) or (kill_when is not None and kill_when()):
                os.killpg(proc.pid, signal.SIGKILL)
                killed = True
                break
            time.sleep(0.01)
        out, err = proc.communicate()
        outcome = Outcome(operation, killed, time.monotonic() - started)
        if not killed:
            if proc.returncode != 0:
                outcome.problems.append(f"{operation} exited {proc.returncode}: {err.strip()[-300:]}")
            else:
                on_success(out)
        outcome.problems += self.check(operation, killed)
        return outcome

    def random_trial(self) -> Outcome:
        operation = self.rng.choice(OPERATIONS)
        return self.run(operation, kill_after=self.rng.uniform(0.3, WINDOW_S[operation]))

    # -- the operations: (command, env, what to record if it reports success) ---------------------
    def _cli(self, *args):
        return [*MEMCHAT, *args], dict(self.env, MEMCHAT_EMBED_MODEL=self.models[self.model])

    def _import(self):
        path = self.work / f"import-{self.trial}.jsonl"
        self.importing = [f"Trial {self.trial} note {i}: parcel {i} went to locker {self.rng.randrange(10**6)}."
                          for i in range(IMPORT_TURNS)]
        path.write_text("".join(json.dumps({"text": t, "conversation_id": f"imp-{self.trial}"}) + "\n"
                                for t in self.importing))
        return (*self._cli("memory", "import", str(path)), lambda out: self.present.update(self.importing))

    def _ask(self):
        question = f"Trial {self.trial}: what did I say about parcel {self.rng.randrange(600)}?"
        self.asking = question

        def stored(out: str) -> None:
            reply = json.loads(out)
            with self._db() as conn:
                answer = conn.execute("SELECT text FROM turns WHERE id = ?", (reply["reply_turn_id"],)).fetchone()
            self.present.update([question, answer[0] if answer else f"<reply turn {reply['reply_turn_id']}>"])

        command, env = self._cli("ask", question, "--json")
        return command, env, stored

    def _forget(self):
        with self._db() as conn:
            ids = [r[0] for r in conn.execute("SELECT id FROM conversations ORDER BY random() LIMIT 1")]
        self.forgetting = ids[0] if ids else "nothing-to-forget"
        self.forgetting_texts = self._texts(self.forgetting)

        def forgot(out: str) -> None:
            self.forgotten.add(self.forgetting)
            self.present -= self.forgetting_texts

        return (*self._cli("memory", "forget", "--conversation", self.forgetting, "--yes"),
                forgot if ids else (lambda out: None))

    def _reembed(self):
        self.model = 1 - self.model  # a killed re-embed is finished with this model by check()
        return (*self._cli("memory", "reembed"), lambda out: None)

    def _migrate(self):
        target = "qdrant" if self.store == "faiss" else "faiss"

        def moved(out: str) -> None:
            self.store = target

        return (*self._cli("memory", "migrate", "--to", target), moved)

    # -- the checks ---------------------------------------------------------------------------------
    def _db(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.data_dir / "memchat.db", timeout=30)
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    def _texts(self, conversation: str) -> set[str]:
        with self._db() as conn:
            return {r[0] for r in conn.execute("SELECT text FROM turns WHERE conversation_id = ?", (conversation,))}

    def check(self, operation: str, killed: bool) -> list[str]:
        if not (self.data_dir / "memchat.db").exists():
            return []  # killed before the first trial created the store
        problems = []
        if operation == "reembed" and killed:  # the recovery docs/reliability.md gives: run it again
            command, env = self._cli("memory", "reembed")
            finish = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True)
            if finish.returncode != 0:
                problems.append(f"re-embed did not finish when run again: {finish.stderr.strip()[-300:]}")
        with self._db() as conn:
            if (result := conn.execute("PRAGMA integrity_check").fetchone()[0]) != "ok":
                problems.append(f"integrity_check: {result}")
            try:
                conn.execute("INSERT INTO turns_fts(turns_fts, rank) VALUES ('integrity-check', 1)")
            except sqlite3.DatabaseError as exc:
                problems.append(f"FTS5 integrity-check: {exc}")
            texts = {r[0] for r in conn.execute("SELECT text FROM turns")}
            bare = {r[0] for r in conn.execute("SELECT id FROM turns WHERE id NOT IN (SELECT turn_id FROM embeddings)")}
            listed = json.loads((conn.execute("SELECT value FROM meta WHERE key = 'embed_deferred'").fetchone()
                                 or ["[]"])[0])
            store = (conn.execute("SELECT value FROM meta WHERE key = 'vector_store'").fetchone() or ["faiss"])[0]
        if operation == "forget" and killed:  # all of the conversation or none of it
            left = self._texts(self.forgetting)
            if left and left != self.forgetting_texts:
                problems.append(f"a killed forget left {len(left)} of {len(self.forgetting_texts)} turns")
            if not left:  # it got as far as the commit: forgotten, as if it had reported so
                self.present -= self.forgetting_texts
        if unlisted := bare - set(listed):  # a turn committed before its vector is listed for the next open
            problems.append(f"{len(unlisted)} turns without a vector, not listed to be embedded")
        if lost := self.present - texts:
            problems.append(f"{len(lost)} turns reported stored are gone, e.g. {sorted(lost)[0]!r}")
        with self._db() as conn:
            back = [c for c in self.forgotten if conn.execute("SELECT 1 FROM turns WHERE conversation_id = ?",
                                                              (c,)).fetchone()]
        if back:
            problems.append(f"forgotten conversations came back: {back}")
        if operation == "import" and killed:
            kept = len(set(self.importing) & texts)
            if kept % IMPORT_BATCH and kept != IMPORT_TURNS:
                problems.append(f"a killed import left {kept} of its turns: not whole batches")
        self.store = store
        problems += self._opens()
        with self._db() as conn:  # the open embedded what waited
            left = conn.execute("SELECT count(*) FROM turns WHERE id NOT IN (SELECT turn_id FROM embeddings)")
            if left := left.fetchone()[0]:
                problems.append(f"{left} turns without a vector after the next open")
        return problems

    def _opens(self) -> list[str]:
        """The memory opens as the next command would, and its index holds every vector."""
        from memory.embedding import Embedder
        from memory.errors import MemoryError_
        from memory.memory import Memory

        path = self.models[self.model]
        embedder = self._embedders.setdefault(path, Embedder(path))
        try:
            with Memory(self.data_dir, embedder) as memory:
                stats = memory.stats()
        except MemoryError_ as exc:
            return [f"the memory does not open: {exc}"]
        if stats["indexed"] != stats["vectors"]:
            return [f"indexed {stats['indexed']} != vectors {stats['vectors']}"]
        return []


def main(argv: list[str] | None = None) -> int:
    from tests.standins import StandIn, Step

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--seed", type=int, default=None, help="default: random (printed, to rerun a failure)")
    parser.add_argument("--work", type=Path, default=None, help="where the data dir goes (default: a temp dir)")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(10**6)
    import tempfile

    work = args.work or Path(tempfile.mkdtemp(prefix="memchat-crash-"))
    cache = work / "model-cache"
    print(f"crash trials: {args.trials}, seed {seed}, data dir {work / 'data'}", flush=True)
    slow_reply = [Step(chunks=[f"part{n} " for n in range(40)], chunk_delay_s=0.05)]
    counts: Counter = Counter()
    failures = 0
    started = time.monotonic()
    with StandIn("gemini", slow_reply) as server:
        trials = CrashTrials(work, cache, seed, server.url)
        first = trials.run("import")  # a memory to crash on; not a trial
        if first.problems:
            print(f"could not set up: {first.problems}")
            return 1
        for n in range(1, args.trials + 1):
            outcome = trials.random_trial()
            counts[(outcome.operation, "killed" if outcome.killed else "finished")] += 1
            status = "FAIL " + "; ".join(outcome.problems) if outcome.problems else "ok"
            print(f"{n:>4} {outcome.operation:<8} {'killed' if outcome.killed else 'finished':<8} "
                  f"{outcome.seconds:5.1f} s  {status}", flush=True)
            failures += bool(outcome.problems)
    print(f"\n{args.trials} trials in {time.monotonic() - started:.0f} s, seed {seed}: {failures} failed")
    for operation in OPERATIONS:
        print(f"  {operation:<8} killed {counts[(operation, 'killed')]:>3}, finished {counts[(operation, 'finished')]:>3}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
