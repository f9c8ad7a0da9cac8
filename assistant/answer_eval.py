"""`memchat eval answers`: does a right recall become a right answer?

A case file (JSONL; data/answer-cases.jsonl is memchat's own set) holds personal facts, told in
different styles, with distractors about neighbouring things, and a question whose answer is in
one fact. Every case's facts and distractors are told to one fresh store, as a person tells them:
each a user turn in a conversation of its own, a day apart. Then each question is asked in a new
conversation through the same ChatService as `memchat ask`, so earlier questions and replies are
remembered as they would be. An answer counts when it states one of the accepted strings as whole
words (case and punctuation aside).
"""
from __future__ import annotations

import json
import re
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from assistant.chat import ChatService
from memory.errors import BadInput
from memory.memory import Memory
from memory.turn import NewTurn

DAY = 86_400.0


@dataclass
class Case:
    id: int
    style: str
    facts: list[str]
    distractors: list[str]
    question: str
    expect: list[str]


def load_cases(path: Path) -> list[Case]:
    """Read and check a case file whole; a bad line is named, nothing is run."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: cannot read the cases ({exc.__class__.__name__})") from None
    cases = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            case = Case(id=raw.get("id", number), style=str(raw.get("style", "")), facts=list(raw["facts"]),
                        distractors=list(raw.get("distractors", [])), question=str(raw["question"]),
                        expect=list(raw["expect"]))
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            raise BadInput(f"{path}: line {number}: not a case ({exc.__class__.__name__}: {exc}); each line "
                           "needs facts (a list), question and expect (a list)") from None
        if not case.facts or not case.expect or not all(isinstance(t, str) and t.strip() for t in case.facts + case.expect):
            raise BadInput(f"{path}: line {number}: facts and expect must be non-empty lists of text")
        cases.append(case)
    if not cases:
        raise BadInput(f"{path}: no cases")
    return cases


def _words(text: str) -> list[str]:
    """Words, case aside; dots, @ and - inside a word stay (1.78, mara.k@fastmail.com, E-58213)."""
    return re.findall(r"[\w@+-]+(?:\.[\w@+-]+)*", text.casefold())


def states(answer: str, expect: list[str]) -> bool:
    """Whether the answer says one of the accepted strings as whole words (case and punctuation aside)."""
    said = _words(answer)

    def same(word: str, want: str) -> bool:
        return word == want or word == want + "s"  # "Thursdays" states Thursday

    for accepted in expect:
        wanted = _words(accepted)
        for i in range(len(said) - len(wanted) + 1):
            if wanted and all(same(w, x) for w, x in zip(said[i : i + len(wanted)], wanted)):
                return True
    return False


def run_answer_eval(cases: list[Case], embedder, backend, service_options: dict, progress,
                    store: str = "faiss") -> dict:
    """Tell every fact, ask every question; the share answered, the share recalled, latency."""
    work = Path(tempfile.mkdtemp(prefix="memchat-answers-"))
    rows = []
    try:
        with Memory(work, embedder, store=store) as memory:
            start = time.time() - (len(cases) + 1) * DAY
            told: list[NewTurn] = []
            for n, case in enumerate(cases):
                for m, text in enumerate(case.facts + case.distractors):
                    told.append(NewTurn(text=text, role="user", conversation_id=f"told-{case.id}-{m}",
                                        created_at=start + n * DAY + m * 60, meta={"case": case.id, "fact": m < len(case.facts)}))
            memory.remember_many(told, total=len(told), progress=progress)
            fact_ids = {}
            for turn in memory.turns():
                if turn.meta.get("fact"):
                    fact_ids.setdefault(turn.meta["case"], set()).add(turn.id)
            service = ChatService(memory, backend, **service_options)
            for n, case in enumerate(cases):
                started = time.perf_counter()
                reply = service.ask(case.question)
                seconds = time.perf_counter() - started
                given = set(reply.prompt.memory_ids) if reply.prompt else set()
                rows.append({"id": case.id, "style": case.style, "question": case.question, "answer": reply.answer,
                             "expect": case.expect, "stated": states(reply.answer, case.expect),
                             "recalled": bool(fact_ids.get(case.id, set()) & given),
                             "first_token_ms": reply.timings.get("first_token_ms"), "seconds": round(seconds, 3),
                             "status": reply.status})
                progress("asking", n + 1, len(cases))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return summarize(rows, backend)


def summarize(rows: list[dict], backend) -> dict:
    def share(key: str, subset: list[dict]) -> float:
        return round(sum(r[key] for r in subset) / len(subset), 4) if subset else 0.0

    recalled = [r for r in rows if r["recalled"]]
    by_style = {style: {"stated": share("stated", group), "cases": len(group)}
                for style in sorted({r["style"] for r in rows})
                for group in [[r for r in rows if r["style"] == style]]}
    first = [r["first_token_ms"] for r in rows if r["first_token_ms"] is not None]
    return {
        "backend": backend.name, "model": backend.model, "cases": len(rows),
        "stated": share("stated", rows), "recalled": share("recalled", rows),
        "stated_when_recalled": share("stated", recalled),
        "first_token_p50_ms": round(statistics.median(first), 1) if first else None,
        "seconds_p50": round(statistics.median(r["seconds"] for r in rows), 3) if rows else None,
        "by_style": by_style, "rows": rows,
    }
