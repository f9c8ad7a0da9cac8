"""`memchat eval locomo FILE --reach`: does a question's evidence reach the prompt the chat builds?

Recall@k counts the top k hits; a reply is given fewer (the chat's k notes, memchat's own replies
left out, chat.recall_notes) and, with standing memories, the pinned turns as well. For each
question this builds the prompt the chat would build (assistant/prompt.py, within the token
budgets) and counts the share of its evidence turns among the notes and standing memories in it.
With `pin`, every statement of the person's that memchat would propose (assistant/standing_proposal.py) is
kept, as a person who accepts each proposal would: the measure of what pins add, by question kind.
Tokens are counted with the embedder's tokenizer, close to a chat model's for English.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from assistant.chat import recall_notes
from assistant.prompt import build_prompt, pin_room
from assistant.standing import pins_for_prompt
from assistant.standing_proposal import proposes
from memory.evaluate import question_kind
from memory.io import locomo_turns
from memory.memory import Memory


def prompt_reach(samples: list[dict], embedder, k: int, token_budget: int, pin_tokens: int, pin: bool,
                 store: str = "faiss", progress=None) -> dict:
    tokenizer = embedder.tokenizer

    def count_tokens(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False).ids)

    by_kind: dict[str, list[float]] = {}
    pinned_total = proposed_right = 0
    total = sum(1 for s in samples for q in s.get("qa", []) if q.get("evidence"))
    asked = 0
    for sample in samples:
        work = Path(tempfile.mkdtemp(prefix="memchat-reach-"))
        try:
            with Memory(work, embedder, store=store) as memory:
                memory.remember_many(locomo_turns(sample), progress=lambda *a: None)
                turn_of = {t.meta.get("dia_id"): t for t in memory.turns()}
                evidence = {d for q in sample.get("qa", []) for d in q.get("evidence", [])}
                if pin:
                    for turn in turn_of.values():
                        if turn.role == "user" and proposes(turn.text, embedder):
                            memory.pin(turn.id)
                            pinned_total += 1
                            proposed_right += turn.meta.get("dia_id") in evidence
                for qa in sample.get("qa", []):
                    if not qa.get("evidence"):
                        continue
                    question = str(qa["question"])
                    room = pin_room(question, token_budget, pin_tokens, count_tokens)
                    pins, pinned = (pins_for_prompt(memory, question, room, count_tokens) if pin
                                    else ([], frozenset()))
                    notes = recall_notes(memory, question, k, exclude=pinned)
                    _, report = build_prompt(question, notes, [], token_budget, count_tokens, pins=pins,
                                             pin_budget=pin_tokens)
                    reached = set(report.memory_ids) | set(report.pin_ids)
                    wanted = [turn_of[d].id for d in qa["evidence"] if d in turn_of]
                    value = sum(1 for i in wanted if i in reached) / len(qa["evidence"])
                    by_kind.setdefault(question_kind(qa), []).append(value)
                    asked += 1
                    if progress:
                        progress("asking", asked, total)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    values = [v for vs in by_kind.values() for v in vs]
    return {
        "k": k, "pinned": pin, "questions": len(values),
        "reach": round(float(np.mean(values)), 4) if values else 0.0,
        "by_category": {name: {"reach": round(float(np.mean(vs)), 4), "questions": len(vs)}
                        for name, vs in sorted(by_kind.items())},
        "pins_kept": pinned_total, "pins_that_are_evidence": proposed_right,
    }
