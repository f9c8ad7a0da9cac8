"""`memchat eval locomo --reach`: the evidence that reaches the chat's prompt, with and without pins."""
from __future__ import annotations

import json

from assistant.cli import main
from assistant.prompt_reach import prompt_reach
from memory import corpus

INSTRUCTION = "From now on, always give me distances in kilometres."


def _sample() -> dict:
    filler = [{"speaker": "Maya", "dia_id": f"D1:{i + 2}", "text": t} for i, t in enumerate(corpus.turns(30, seed=3))]
    turns = [{"speaker": "Maya", "dia_id": "D1:1", "text": INSTRUCTION}, *filler,
             {"speaker": "Assistant", "dia_id": "D1:40", "text": "Noted, kilometres it is."}]
    return {"sample_id": "reach", "conversation": {
        "speaker_a": "Maya", "speaker_b": "Assistant", "assistant_speaker": "Assistant",
        "session_1_date_time": "9:15 am on 3 March, 2024", "session_1": turns},
        "qa": [{"question": "How long is the drive from Lyon to Geneva?", "answer": "in kilometres",
                "evidence": ["D1:1"], "kind": "instruction", "category": 3}]}


def test_a_kept_proposal_reaches_every_prompt_where_recall_alone_may_not(embedder):
    recalled = prompt_reach([_sample()], embedder, k=3, token_budget=2048, pin_tokens=200, pin=False)
    assert recalled["pins_kept"] == 0 and recalled["reach"] in (0.0, 1.0)  # found by recall among 3 notes, or not
    kept = prompt_reach([_sample()], embedder, k=3, token_budget=2048, pin_tokens=200, pin=True)
    assert kept["reach"] == 1.0 and kept["pins_kept"] >= 1 and kept["pins_that_are_evidence"] == 1
    assert kept["by_category"] == {"instruction": {"reach": 1.0, "questions": 1}}
    none = prompt_reach([_sample()], embedder, k=3, token_budget=2048, pin_tokens=0, pin=True)
    assert none["reach"] == 0.0  # a budget of 0 keeps no standing memory in the prompt (nor is it recalled)


def test_the_reach_command(tmp_path, capsys, embedder):
    path = tmp_path / "set.json"
    path.write_text(json.dumps([_sample()]))
    assert main(["eval", "locomo", str(path), "--reach", "--pin", "--json", "--data-dir", str(tmp_path / "d")]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["pinned"] is True and result["questions"] == 1 and result["reach"] == 1.0
