"""`memchat eval locomo FILE --answers`: LoCoMo's question answering, scored with its token F1.

Three rows separate recall's part of the error from the model's: the model answers with no
memory; with memchat's recall (the same notes `memchat ask` would give it, `recall_notes`); and
with the annotated evidence turns given directly. Every answer goes through the same prompt
(`build_prompt`) and backend as a chat reply, greedy. Adversarial questions (category 5) have no
answer to score and are skipped. A sample of questions, spread evenly over the file, keeps a run
within minutes on 2 cores.
"""
from __future__ import annotations

import re
import shutil
import statistics
import string
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np

from assistant.backends import GenerationOptions, StreamState
from assistant.chat import recall_notes
from assistant.prompt import build_prompt
from memory.evaluate import CATEGORIES
from memory.io import locomo_turns
from memory.memory import Memory
from memory.turn import Hit

MODES = ("no memory", "recall", "evidence")


def normalize_answer(text: str) -> str:
    """LoCoMo's normalisation: no commas or punctuation, lower case, no articles, single spaces."""
    text = text.replace(",", "").lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the|and)\b", " ", text)
    return " ".join(text.split())


def token_f1(prediction: str, truth: str) -> float:
    """LoCoMo's f1_score: Porter-stemmed token overlap of the normalised texts."""
    from nltk.stem import PorterStemmer

    stem = PorterStemmer().stem
    predicted = [stem(w) for w in normalize_answer(prediction).split()]
    wanted = [stem(w) for w in normalize_answer(truth).split()]
    same = sum((Counter(predicted) & Counter(wanted)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted), same / len(wanted)
    return 2 * precision * recall / (precision + recall)


def score(prediction: str, answer: str, category: int) -> float:
    """As LoCoMo scores each category: multi-hop answers are comma-separated parts, each matched
    by its best part of the prediction; open-domain answers keep the part before a semicolon."""
    if category == 1:
        parts = [p.strip() for p in prediction.split(",")]
        return float(np.mean([max(token_f1(p, truth.strip()) for p in parts) for truth in answer.split(",")]))
    if category == 3:
        answer = answer.split(";")[0].strip()
    return token_f1(prediction, answer)


def chosen_questions(samples: list[dict], limit: int | None) -> list[tuple[int, dict]]:
    """(sample index, qa) for questions with an answer, every n-th so all categories and samples show."""
    every = [(n, qa) for n, s in enumerate(samples) for qa in s.get("qa", [])
             if qa.get("answer") not in (None, "") and int(qa.get("category", 0)) != 5]
    if limit is None or limit >= len(every):
        return every
    step = len(every) / limit
    return [every[int(i * step)] for i in range(limit)]


def run_locomo_answers(samples: list[dict], embedder, backend, k: int, max_questions: int | None,
                       max_new_tokens: int, progress) -> dict:
    questions = chosen_questions(samples, max_questions)
    options = GenerationOptions(greedy=True, max_new_tokens=max_new_tokens)
    rows = []
    for n, sample in enumerate(samples):
        mine = [qa for m, qa in questions if m == n]
        if not mine:
            continue
        work = Path(tempfile.mkdtemp(prefix="memchat-locomo-answers-"))
        try:
            with Memory(work, embedder) as memory:
                memory.remember_many(locomo_turns(sample))
                by_dia = {t.meta.get("dia_id"): t for t in memory.turns()}
                for qa in mine:
                    question, category = str(qa["question"]), int(qa.get("category", 0))
                    evidence = [Hit(by_dia[d], 1.0, {}, None) for d in qa.get("evidence", []) if d in by_dia]
                    recalled = recall_notes(memory, question, k)
                    row = {"question": question, "answer": str(qa["answer"]), "category": category,
                           "evidence_recalled": _share(evidence, recalled)}
                    for mode, hits in zip(MODES, ([], recalled, evidence)):
                        messages, _ = build_prompt(question, hits, [], 2048, backend.count_tokens)
                        started = time.perf_counter()
                        reply = "".join(backend.stream(messages, options, threading.Event(), StreamState()))
                        row[mode] = {"reply": reply, "f1": round(score(reply, row["answer"], category), 4),
                                     "seconds": round(time.perf_counter() - started, 3)}
                    rows.append(row)
                    progress("answering", len(rows), len(questions))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return summarize(rows, backend, k)


def _share(evidence: list[Hit], recalled: list[Hit]) -> float:
    if not evidence:
        return 0.0
    got = {h.turn.id for h in recalled}
    return len([h for h in evidence if h.turn.id in got]) / len(evidence)


def summarize(rows: list[dict], backend, k: int) -> dict:
    def mean(values) -> float:
        values = list(values)
        return round(float(np.mean(values)), 4) if values else 0.0

    by_category = {}
    for category in sorted({r["category"] for r in rows}):
        group = [r for r in rows if r["category"] == category]
        by_category[CATEGORIES.get(category, str(category))] = {
            "questions": len(group), **{mode: mean(r[mode]["f1"] for r in group) for mode in MODES}}
    return {
        "backend": backend.name, "model": backend.model, "k": k, "questions": len(rows),
        "f1": {mode: mean(r[mode]["f1"] for r in rows) for mode in MODES},
        "evidence_recalled": mean(r["evidence_recalled"] for r in rows),
        "seconds_p50": {mode: round(statistics.median(r[mode]["seconds"] for r in rows), 3) if rows else None
                        for mode in MODES},
        "by_category": by_category, "rows": rows,
    }
