"""A handful of kill -9 trials (tests/crash_trials.py; `make crash-trials` runs 100 at random)."""
from __future__ import annotations

import sqlite3

from memory.memory import IMPORT_BATCH
from tests.crash_trials import IMPORT_TURNS, CrashTrials
from tests.standins import StandIn, Step


def _count(trials: CrashTrials, sql: str, *args) -> int:
    try:
        with trials._db() as conn:
            return conn.execute(sql, args).fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_kill_9_in_the_middle_of_each_operation_loses_nothing_reported(tmp_path, model_cache):
    slow_reply = [Step(chunks=[f"part{n} " for n in range(60)], chunk_delay_s=0.05)]
    with StandIn("gemini", slow_reply) as server:
        trials = CrashTrials(tmp_path, model_cache, seed=7, gemini_url=server.url)
        outcomes = [trials.run("import")]  # finishes: the turns it reports must survive what follows
        assert not outcomes[0].killed and len(trials.present) == IMPORT_TURNS
        # Killed while the work is visibly under way: a batch committed, a question stored, a turn
        # re-embedded; forget and migrate are quick, so they are killed at a random moment.
        outcomes.append(trials.run("import", kill_when=lambda: _count(
            trials, "SELECT count(*) FROM turns WHERE conversation_id = ?", f"imp-{trials.trial}") >= IMPORT_BATCH))
        outcomes.append(trials.run("ask", kill_when=lambda: _count(
            trials, "SELECT count(*) FROM turns WHERE text = ?", trials.asking) >= 1))
        other = trials.models[1 - trials.model]
        outcomes.append(trials.run("reembed", kill_when=lambda: _count(
            trials, "SELECT count(*) FROM embeddings WHERE model = ?", other) >= 1))
        outcomes.append(trials.run("forget", kill_after=trials.rng.uniform(2.0, 5.0)))
        outcomes.append(trials.run("migrate", kill_after=trials.rng.uniform(2.0, 6.0)))
    assert [o.problems for o in outcomes] == [[]] * len(outcomes)
    assert all(o.killed for o in outcomes[1:4])  # the three killed mid-work really were
