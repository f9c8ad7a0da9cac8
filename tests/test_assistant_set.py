"""The assistant-shaped evaluation set (data/make_assistant_set.py): reproducible, well-formed, in its shape.

The committed JSON must be what the generator writes now, every evidence id must point at the
person's own turn holding the planted statement, the parts (dev, test, held-out) share nothing planted, and the
files must go through memchat's real LoCoMo importer.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timezone
from pathlib import Path

import pytest

from memory.errors import BadInput
from memory.io import locomo_turns, parse_locomo_date
from memory.timewindow import parse_window
from tests.conftest import REPO

DATA = REPO / "data"
PARTS = ("dev", "test", "heldout")
KINDS = {"fact": 4, "preference": 4, "instruction": 3, "changed": 4, "multi-session": 1, "temporal": 2}
MODULES = ["make_assistant_set.py", "assistant_set_vocab.py", "assistant_set_replies.py", "assistant_set_habits.py",
           "assistant_set_dev_pool.py", "assistant_set_test_pool.py", "assistant_set_heldout_pool.py"]


def _pools():
    sys.path.insert(0, str(DATA))
    try:
        import assistant_set_dev_pool as dev
        import assistant_set_habits as habits
        import assistant_set_heldout_pool as heldout
        import assistant_set_test_pool as test
    finally:
        sys.path.remove(str(DATA))
    return {"dev": dev.PEOPLE, "test": test.PEOPLE, "heldout": heldout.PEOPLE}, habits


def _planted(spec: dict, habits) -> dict[str, list[str]]:
    """Question -> the statements its evidence turns must hold, from the person's pool entry."""
    out = {q: [s] for s, q, _ in spec["facts"]}
    out |= {q: [new] for _, new, q, _ in spec["changed"]}
    out |= {q: [s] for s, q in spec["temporal"]}
    out |= {q: list(statements) for statements, q, _ in spec["multi"]}
    out |= {q: [s] for s, q, _ in habits.INSTRUCTIONS[spec["sample"]]}
    out |= {q: [s] for s, asked in habits.PREFERENCES[spec["sample"]] for q, _ in asked}
    return out


def _statements(spec: dict, habits) -> set[str]:
    found = {s for s, _, _ in spec["facts"]} | {s for s, _ in spec["temporal"]} | set(spec["noise"])
    found |= {s for old, new, _, _ in spec["changed"] for s in (old, new)} | {s for m in spec["multi"] for s in m[0]}
    found |= {s for s, _, _ in habits.INSTRUCTIONS[spec["sample"]]} | {s for s, _ in habits.PREFERENCES[spec["sample"]]}
    return found


@pytest.fixture(scope="module")
def parts() -> dict[str, list[dict]]:
    return {part: json.loads((DATA / f"assistant-set-{part}.json").read_text(encoding="utf-8")) for part in PARTS}


def _turns(sample: dict) -> dict[str, dict]:
    conv = sample["conversation"]
    return {t["dia_id"]: t for key, turns in conv.items()
            if key.startswith("session_") and key.count("_") == 1 for t in turns}


def test_committed_files_are_what_the_generator_writes(tmp_path):
    env = {**os.environ, "PYTHONHASHSEED": "12345"}  # a hash seed of its own: no set or dict order may leak in
    subprocess.run([sys.executable, str(DATA / "make_assistant_set.py"), "--out", str(tmp_path)],
                   check=True, capture_output=True, env=env, timeout=60)
    for part in PARTS:
        name = f"assistant-set-{part}.json"
        assert (tmp_path / name).read_bytes() == (DATA / name).read_bytes(), f"{name} is stale: rerun the generator"
        assert (DATA / name).stat().st_size < 1_500_000


def test_evidence_is_the_persons_turn_holding_the_statement(parts):
    pools, habits = _pools()
    for part, samples in parts.items():
        specs = {spec["sample"]: spec for spec in pools[part]}
        for sample in samples:
            turns, person = _turns(sample), sample["conversation"]["speaker_a"]
            planted = _planted(specs[sample["sample_id"]], habits)
            for qa in sample["qa"]:
                ids = qa["evidence"] + qa.get("stale_evidence", [])
                assert ids and all(turns[i]["speaker"] == person for i in ids), qa
                for dia, statement in zip(qa["evidence"], planted[qa["question"]]):
                    text = turns[dia]["text"]
                    assert statement in text or statement[0].lower() + statement[1:] in text, (dia, qa["question"])
                if qa["kind"] == "multi-session":
                    assert len({i.split(":")[0] for i in qa["evidence"]}) == len(qa["evidence"]) >= 2, qa
                if qa["kind"] == "changed":
                    (new,), (old,) = qa["evidence"], qa["stale_evidence"]
                    assert int(old[1:].split(":")[0]) < int(new[1:].split(":")[0]), qa


def test_every_kind_in_each_part_with_enough_questions(parts):
    for part, samples in parts.items():
        qas = [qa for s in samples for qa in s["qa"]]
        kinds = [qa["kind"] for qa in qas]
        assert set(kinds) == set(KINDS), part
        assert all(qa["category"] == KINDS[qa["kind"]] for qa in qas)
        assert len(qas) >= 150 and kinds.count("instruction") >= 25 and kinds.count("preference") >= 25, part
        assert len(samples) == 8 and all(20 <= len(s["qa"]) <= 35 for s in samples), part


@pytest.mark.parametrize("one, other", [("dev", "test"), ("dev", "heldout"), ("test", "heldout")])
def test_the_parts_share_no_conversation_or_statement(parts, one, other):
    pools, habits = _pools()
    ids = {part: {s["sample_id"] for s in samples} for part, samples in parts.items()}
    assert not ids[one] & ids[other]
    said = {part: set().union(*(_statements(spec, habits) for spec in pools[part])) for part in PARTS}
    assert not said[one] & said[other]
    other_text = "\n".join(t["text"] for s in parts[other] for t in _turns(s).values() if t["speaker"] != "Assistant")
    assert not [s for s in said[one] if s in other_text]
    assert not {p["person"] for p in pools[one]} & {p["person"] for p in pools[other]}
    assert not {p["project"] for p in pools[one]} & {p["project"] for p in pools[other]}


def test_files_load_through_the_locomo_importer(parts):
    for samples in parts.values():
        for sample in samples:
            records = locomo_turns(sample)
            assert len(records) == len(_turns(sample))
            assert all(r.meta["dia_id"] and r.conversation_id == sample["sample_id"] for r in records)
            # stored as memchat stores a chat: the assistant's turns are replies, and no name is in a text
            spoken = {t["dia_id"]: t for t in _turns(sample).values()}
            for r in records:
                turn = spoken[r.meta["dia_id"]]
                assert r.role == ("assistant" if turn["speaker"] == "Assistant" else "user")
                assert r.text == turn["text"]


def test_a_locomo_file_without_an_assistant_keeps_both_speakers_as_people():
    sample = {"sample_id": "s", "conversation": {"speaker_a": "Ada", "speaker_b": "Ben",
              "session_1_date_time": "9:15 am on 3 March, 2024",
              "session_1": [{"speaker": "Ada", "dia_id": "D1:1", "text": "Hi"}, {"speaker": "Ben", "dia_id": "D1:2", "text": "Yo"}]}}
    assert [(r.role, r.text) for r in locomo_turns(sample)] == [("user", "Ada: Hi"), ("user", "Ben: Yo")]
    with pytest.raises(BadInput, match="assistant_speaker"):
        locomo_turns({**sample, "conversation": {**sample["conversation"], "assistant_speaker": 3}})


def test_the_set_is_in_the_assistant_shape(parts):
    for part, samples in parts.items():
        replies, messages = [], []
        for sample in samples:
            conv = sample["conversation"]
            assert conv["speaker_b"] == "Assistant" and conv["speaker_a"] != "Assistant"
            dates = [parse_locomo_date(conv[f"session_{n}_date_time"]) for n in range(1, 20) if f"session_{n}" in conv]
            assert 6 <= len(dates) <= 10 and dates == sorted(dates) and dates[-1] - dates[0] > 90 * 86400
            turns = list(_turns(sample).values())
            assert 60 <= len(turns) <= 120
            replies += [t["text"] for t in turns if t["speaker"] == "Assistant"]
            messages += [t["text"] for t in turns if t["speaker"] != "Assistant"]
        long = [r for r in replies if len(r) > 1_100]
        assert 0.3 <= len(long) / len(replies) <= 0.7, part
        assert max(len(r) for r in replies) <= 3_000 and sum("```" in r for r in replies) >= 20
        assert sum("\n- " in r for r in replies) >= 0.2 * len(replies)
        assert max(len(m) for m in messages) < 300 and sorted(map(len, messages))[len(messages) // 2] < 120


def test_no_question_names_a_time_window(parts):
    """A phrase like "tonight" or "on Friday" would make recall filter by time; that is not what is measured."""
    for samples in parts.values():
        for sample in samples:
            asked_at = max(parse_locomo_date(v) for k, v in sample["conversation"].items() if k.endswith("_date_time"))
            named = [qa["question"] for qa in sample["qa"] if parse_window(qa["question"], asked_at + 86400, timezone.utc)]
            assert not named, named


def test_generator_modules_stay_small():
    for name in MODULES:
        assert len((DATA / name).read_text(encoding="utf-8").splitlines()) <= 400, name
