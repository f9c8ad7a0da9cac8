"""`memchat eval answers`: its checking on hand cases, its file validation, and a short real run."""
from __future__ import annotations

import json

import pytest

from assistant.answer_eval import load_cases, states
from assistant.cli import main
from memory.errors import BadInput
from tests.conftest import REPO

CASES = REPO / "data" / "answer-cases.jsonl"


def test_an_answer_counts_when_it_states_an_accepted_string():
    assert states("The wifi password at the cabin is redsparrow12.", ["redsparrow12"])
    assert states("Your new email is Mara.K@fastmail.com!", ["mara.k@fastmail.com"])
    assert states("It is on level  3.", ["3", "three"])
    assert not states("It is on level 13.", ["3"])  # a whole word, not a digit inside another number
    assert not states("I don't know.", ["Lisbon"])
    assert states("Book club is on Sundays now.", ["Sunday"])


def test_a_bad_case_file_is_refused_naming_the_line(tmp_path):
    path = tmp_path / "cases.jsonl"
    path.write_text('{"facts": ["a"], "question": "q?", "expect": ["a"]}\n{"facts": "not a list"}\n')
    with pytest.raises(BadInput, match="line 2"):
        load_cases(path)
    path.write_text('{"facts": [], "question": "q?", "expect": ["a"]}\n')
    with pytest.raises(BadInput, match="line 1"):
        load_cases(path)


def test_the_shipped_set_is_varied_and_checked_whole():
    cases = load_cases(CASES)
    assert len(cases) >= 60 and len({c.question for c in cases}) == len(cases)
    assert len({c.style for c in cases}) >= 5 and all(c.distractors for c in cases)


def test_eval_answers_runs_the_chat_loop_and_reports(tmp_path, capsys, cli_env, monkeypatch, local_backend):
    for name in ("MEMCHAT_DATA_DIR", "MEMCHAT_MODEL_CACHE"):
        monkeypatch.setenv(name, cli_env[name])
    code = main(["eval", "answers", str(CASES), "--max-questions", "3", "--max-new-tokens", "16", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["cases"] == 3 and result["backend"] == "local"
    assert result["recalled"] == 1.0  # each question's fact is among the notes the model was given
    assert [r["id"] for r in result["rows"]] == [1, 2, 3] and all(r["status"] == "ok" for r in result["rows"])
    assert result["stated"] == pytest.approx(sum(r["stated"] for r in result["rows"]) / 3, abs=1e-4)
    assert "extensions" in result["machine"]
