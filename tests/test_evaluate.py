"""`memchat eval locomo`: its arithmetic on hand-counted cases, and the command on the dev slice."""
from __future__ import annotations

import json

import pytest

from assistant.cli import main
from memory.evaluate import evaluate, evidence_recall
from tests.conftest import LOCOMO_MINI

SAMPLE = {
    "sample_id": "hand-made",
    "conversation": {
        "speaker_a": "Ada", "speaker_b": "Ben",
        "session_1_date_time": "10:00 am on 3 May, 2023",
        "session_1": [
            {"speaker": "Ada", "dia_id": "D1:1", "text": "I adopted a tortoise named Sheldon yesterday."},
            {"speaker": "Ben", "dia_id": "D1:2", "text": "My violin recital went badly, I forgot the cadenza."},
            {"speaker": "Ada", "dia_id": "D1:3", "text": "We repainted the kitchen a bright saffron yellow."},
        ],
        "session_2_date_time": "4:30 pm on 20 June, 2023",
        "session_2": [
            {"speaker": "Ben", "dia_id": "D2:1", "text": "I finally passed my glider pilot exam!"},
            {"speaker": "Ada", "dia_id": "D2:2", "text": "Sheldon the tortoise ate strawberries today.",
             "blip_caption": "a photo of a tortoise eating a strawberry"},
        ],
    },
    "qa": [
        {"question": "What is the name of Ada's tortoise?", "evidence": ["D1:1"], "category": 4},
        {"question": "What exam did Ben pass?", "evidence": ["D2:1"], "category": 4},
        # two evidence turns, k=1: at most one can be in the top 1 -> exactly 0.5 here
        {"question": "What happened with the tortoise Sheldon?", "evidence": ["D1:1", "D2:2"], "category": 1},
        # evidence that is not a turn of the conversation can never be found -> 0
        {"question": "What colour is the kitchen?", "evidence": ["D9:9"], "category": 2},
        {"question": "Questions without evidence are skipped", "evidence": [], "category": 5},
    ],
}


def test_evidence_recall_cases():
    assert evidence_recall(["D1:1"], ["D1:1", "D2:2"]) == 1.0
    assert evidence_recall(["D1:1", "D2:2"], ["D2:2"]) == 0.5
    assert evidence_recall(["D1:1", "D1:2", "D1:3"], ["D1:2", "D3:3"]) == pytest.approx(1 / 3)
    assert evidence_recall(["D1:1"], []) == 0.0


def test_eval_arithmetic_on_a_hand_counted_sample(embedder):
    result = evaluate([SAMPLE], embedder, k=1).to_json()
    assert result["questions"] == 4  # the question without evidence is not asked
    # hand count: 1 + 1 + 0.5 + 0 over 4 questions
    assert result["recall"] == pytest.approx((1 + 1 + 0.5 + 0) / 4)
    assert result["by_category"]["single-hop"] == {"recall": 1.0, "questions": 2}
    assert result["by_category"]["multi-hop"] == {"recall": 0.5, "questions": 1}
    assert result["by_category"]["temporal"] == {"recall": 0.0, "questions": 1}
    timed = evaluate([SAMPLE], embedder, k=1)
    assert len(timed.latencies_ms) == 4  # one timing per question asked
    summary = timed.to_json()
    assert min(timed.latencies_ms) <= summary["search_p50_ms"] <= summary["search_p95_ms"] <= max(timed.latencies_ms)
    assert summary["by_conversation"] == {SAMPLE["sample_id"]: {"recall": result["recall"], "questions": 4}}
    kinds = {**SAMPLE, "qa": [{**qa, "kind": "instruction"} for qa in SAMPLE["qa"]]}
    assert set(evaluate([kinds], embedder, k=1).to_json()["by_category"]) == {"instruction"}  # a set's own kinds
    wider = evaluate([SAMPLE], embedder, k=5).to_json()
    assert wider["by_category"]["multi-hop"]["recall"] == 1.0  # both evidence turns fit in 5


def test_eval_command_on_the_project_fixture(tmp_path, capsys):
    code = main(["eval", "locomo", str(LOCOMO_MINI), "-k", "10", "--max-questions", "12", "--json",
                 "--data-dir", str(tmp_path / "unused")])
    result = json.loads(capsys.readouterr().out)
    assert code == 0
    assert set(result) == {"k", "recall", "by_category", "by_conversation", "questions", "search_p50_ms",
                           "search_p95_ms"}
    assert result["questions"] == 12 and 0 < result["recall"] <= 1
    assert sum(c["questions"] for c in result["by_category"].values()) == 12
    assert sum(c["questions"] for c in result["by_conversation"].values()) == 12


def test_locomo_answer_scoring_follows_the_benchmark():
    from assistant.locomo_answers import normalize_answer, score, token_f1

    assert normalize_answer("The Cat, and a Dog!") == "cat dog"
    assert token_f1("painting the sunrise", "painted a sunrise") == 1.0  # articles and stems aside
    assert token_f1("She painted a sunrise", "painted sunrise") == pytest.approx(0.8)  # one extra word
    assert token_f1("Paris", "Lisbon") == 0.0
    assert token_f1("in Lisbon, Portugal", "Lisbon") == pytest.approx(2 * (1 / 3) / (1 / 3 + 1))
    # multi-hop: each comma-separated part of the answer is matched by its best part of the reply
    assert score("hiking, painting", "painting, hiking", 1) == 1.0
    assert score("hiking", "painting, hiking", 1) == 0.5
    assert score("a park", "a park; a garden", 3) == 1.0  # open-domain: the part before the semicolon


def test_locomo_answers_three_rows_on_the_project_fixture(tmp_path, capsys, cli_env, monkeypatch, local_backend):
    monkeypatch.setenv("MEMCHAT_MODEL_CACHE", cli_env["MEMCHAT_MODEL_CACHE"])
    code = main(["eval", "locomo", str(LOCOMO_MINI), "--answers", "--max-questions", "3", "--max-new-tokens", "12",
                 "--json", "--data-dir", str(tmp_path / "unused")])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["questions"] == 3
    assert set(result["f1"]) == {"no memory", "recall", "evidence"}
    for row in result["rows"]:
        for mode in ("no memory", "recall", "evidence"):
            assert 0.0 <= row[mode]["f1"] <= 1.0 and row[mode]["reply"].strip()
    assert result["f1"]["recall"] == pytest.approx(sum(r["recall"]["f1"] for r in result["rows"]) / 3, abs=1e-4)
    # the questions are spread over both samples of the fixture
    assert len({r["question"] for r in result["rows"]}) == 3
