"""`memchat eval locomo`: turn-level evidence recall@k on LoCoMo through the normal recall path.

For each conversation: a fresh temporary store, every turn imported (speaker in the text, image
captions appended, the session's date as its timestamp), then each question with evidence is
asked through Memory.recall — the same call the chat loop makes, with the time window the question
names, read as if asked just after the last session (LoCoMo's dates are years old: read against
today, "last year" would name a year no session is in). Recall@k of a question is the share of its
evidence dia_ids among the top k hits; the overall figure is the mean over questions.
"""
from __future__ import annotations

import json
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from datetime import timezone
from pathlib import Path

import numpy as np

from memory.errors import BadInput
from memory.io import locomo_turns
from memory.memory import Memory
from memory.recall import RecallWeights
from memory.timewindow import parse_window

CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial"}


@dataclass
class EvalResult:
    k: int
    per_question: list[tuple[str, float]] = field(default_factory=list)  # (kind, recall)
    per_conversation: dict[str, list[float]] = field(default_factory=dict)  # sample_id: recalls
    latencies_ms: list[float] = field(default_factory=list)

    def to_json(self) -> dict:
        by_category: dict[str, list[float]] = {}
        for kind, value in self.per_question:
            by_category.setdefault(kind, []).append(value)
        return {
            "k": self.k,
            "recall": round(float(np.mean([v for _, v in self.per_question])), 4) if self.per_question else 0.0,
            "by_category": {name: {"recall": round(float(np.mean(values)), 4), "questions": len(values)}
                            for name, values in sorted(by_category.items())},
            "by_conversation": {name: {"recall": round(float(np.mean(values)), 4), "questions": len(values)}
                                for name, values in self.per_conversation.items() if values},
            "questions": len(self.per_question),
            "search_p50_ms": round(statistics.median(self.latencies_ms), 2) if self.latencies_ms else 0.0,
            "search_p95_ms": round(float(np.percentile(self.latencies_ms, 95)), 2) if self.latencies_ms else 0.0,
        }


def load_locomo(path: Path) -> list[dict]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInput(f"{path}: cannot read LoCoMo JSON ({exc})") from None
    if not isinstance(data, list) or not all(isinstance(s, dict) and "conversation" in s for s in data):
        raise BadInput(f"{path}: not LoCoMo (a list of samples with 'conversation' and 'qa')")
    return data


def question_kind(qa: dict) -> str:
    """A question's kind: its own "kind" field where the set has one (memchat's sets), else LoCoMo's category name."""
    if isinstance(qa.get("kind"), str) and qa["kind"]:
        return qa["kind"]
    category = qa.get("category", 0)
    return CATEGORIES.get(category, str(category)) if isinstance(category, int) else str(category)


def evidence_recall(evidence: list[str], retrieved: list[str]) -> float:
    """Share of the evidence dia_ids that appear among the retrieved ones."""
    wanted = set(evidence)
    return len(wanted & set(retrieved)) / len(wanted) if wanted else 0.0


def evaluate(samples: list[dict], embedder, k: int = 10, store: str = "faiss",
             weights: RecallWeights | None = None, max_questions: int | None = None,
             progress=None) -> EvalResult:
    result = EvalResult(k=k)
    total = sum(len([q for q in s.get("qa", []) if q.get("evidence")]) for s in samples)
    total = min(total, max_questions) if max_questions else total
    for sample in samples:
        work = Path(tempfile.mkdtemp(prefix="memchat-eval-"))
        try:
            with Memory(work, embedder, store=store) as memory:
                records = locomo_turns(sample)
                memory.remember_many(records, progress=progress or (lambda *a: None))
                asked_at = max((r.created_at for r in records), default=time.time())
                for qa in sample.get("qa", []):
                    if not qa.get("evidence"):
                        continue
                    if max_questions and len(result.per_question) >= max_questions:
                        break
                    started = time.perf_counter()
                    question = str(qa["question"])
                    window = parse_window(question, asked_at, timezone.utc)  # LoCoMo's dates carry no zone
                    hits = memory.recall(question, k=k, weights=weights, window=window)
                    result.latencies_ms.append((time.perf_counter() - started) * 1000)
                    retrieved = [h.turn.meta.get("dia_id") for h in hits]
                    value = evidence_recall(qa["evidence"], retrieved)
                    result.per_question.append((question_kind(qa), value))
                    result.per_conversation.setdefault(str(sample.get("sample_id", len(result.per_conversation))), []).append(value)
                    if progress:
                        progress("asking", len(result.per_question), total)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        if max_questions and len(result.per_question) >= max_questions:
            break
    return result
