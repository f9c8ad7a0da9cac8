"""Trains the learned half of the standing-memory proposal (assistant/standing_proposal.py) and
writes assistant/standing_reader.json.

What is lasting (positives), sentence by sentence:
  - the instructions and preferences planted for the assistant set's dev and test people
    (data/assistant_set_habits.py), as the person said them;
  - the lasting statements of tests/data/standing-statements.jsonl's `dev` and `second` sets.
What is not (negatives), every candidate sentence (assistant/standing_proposal.candidate_sentences) of:
  - the other turns of those dev and test people (data/assistant-set-{dev,test}.json);
  - the labelled sets' other statements (one-off requests, questions, habits that are no instruction);
  - the person turns of data/sample-memories.jsonl and tests/data/locomo-mini.json;
  - the first third of LoCoMo's dev split (../shared/data/locomo/locomo-dev.json, not in the
    repository: its licence), two friends talking, whose values and likings read like preferences.
Nothing of the held-out parts (the assistant set's and the labelled statements') is read.

The model: L2-regularised logistic regression on the embedder's unit vectors, positives weighted so
both classes count alike, fitted by Newton's method. A message is proposed when the rule proposes it
or one of its candidate sentences reaches the threshold. The regularisation and the threshold are
chosen by cross-validation over three folds (the dev people, the test people, the labelled sets),
each scored by a reader trained on the other two and the extra negatives: of the settings whose
false proposals on the two folds of people average at most MAX_FALSE (one ordinary message in 50),
the one that proposes most of their instructions and preferences, then the fewest false.

Run: .venv/bin/python data/make_standing_reader.py [--locomo PATH] [--out PATH]   (about a minute)
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "data")]

from assistant.standing_proposal import READER_FILE, StandingReader, candidate_sentences, proposes  # noqa: E402

REGULARISATION = (1e-4, 3e-4, 1e-3, 3e-3)
THRESHOLDS = (0.5, 0.7, 0.8, 0.9)
MAX_FALSE = 0.02
FOLDS = (("people-dev",), ("people-test",), ("labelled-dev", "labelled-second"))


def assistant_set(part: str) -> tuple[list[str], list[str], list[str]]:
    """(the planted statements, the turns that hold them, the person's other turns) of one part."""
    import assistant_set_habits as habits

    said = [s for sid, items in habits.INSTRUCTIONS.items() if sid.startswith(f"assistant-{part}-") for s, *_ in items]
    said += [s for sid, items in habits.PREFERENCES.items() if sid.startswith(f"assistant-{part}-") for s, _ in items]
    planted, other = [], []
    for sample in json.loads((REPO / "data" / f"assistant-set-{part}.json").read_text()):
        conversation = sample["conversation"]
        evidence = {d for q in sample["qa"] if q.get("kind") in ("instruction", "preference") for d in q["evidence"]}
        for key, turns in conversation.items():
            if key.startswith("session_") and isinstance(turns, list):
                for turn in turns:
                    if turn["speaker"] != conversation["assistant_speaker"]:
                        (planted if turn["dia_id"] in evidence else other).append(turn["text"])
    return said, planted, other


def labelled(name: str) -> tuple[list[str], list[str]]:
    rows = [json.loads(line) for line in (REPO / "tests" / "data" / "standing-statements.jsonl").read_text().splitlines()]
    return ([r["text"] for r in rows if r["set"] == name and r["standing"]],
            [r["text"] for r in rows if r["set"] == name and not r["standing"]])


def person_turns(path: Path) -> list[str]:
    from memory.io import read_records

    records = read_records(path).records
    return [r.text.split(": ", 1)[1] if ": " in r.text else r.text for r in records if r.role == "user"]


def sources(locomo: Path) -> dict[str, dict]:
    """Each source: `positive` sentences to train on, `negative` messages (trained on sentence by
    sentence), and for a fold, the messages it is scored on (`lasting`, `not_lasting`)."""
    out = {}
    for part in ("dev", "test"):
        said, planted, other = assistant_set(part)
        out[f"people-{part}"] = {"positive": said, "negative": other, "lasting": planted, "not_lasting": other}
    for name in ("dev", "second"):
        yes, no = labelled(name)
        out[f"labelled-{name}"] = {"positive": yes, "negative": no, "lasting": yes, "not_lasting": no}
    friends = person_turns(locomo)
    out["others"] = {"positive": [], "negative": person_turns(REPO / "data" / "sample-memories.jsonl")
                     + person_turns(REPO / "tests" / "data" / "locomo-mini.json") + friends[: len(friends) // 3]}
    return out


def fit(vectors: np.ndarray, labels: np.ndarray, regularisation: float) -> tuple[np.ndarray, float]:
    """Weighted L2 logistic regression by Newton's method: (weights, bias)."""
    x = np.hstack([vectors.astype(np.float64), np.ones((len(vectors), 1))])
    share = np.where(labels == 1, (len(labels) - labels.sum()) / max(labels.sum(), 1), 1.0)
    share /= share.mean()
    penalty = regularisation * np.eye(x.shape[1])
    penalty[-1, -1] = 0.0  # the bias is not shrunk
    w = np.zeros(x.shape[1])
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-x @ w))
        gradient = x.T @ (share * (p - labels)) / len(labels) + penalty @ w
        hessian = (x * (share * p * (1 - p))[:, None]).T @ x / len(labels) + penalty
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-9:
            break
    return w[:-1], float(w[-1])


class Vectors:
    def __init__(self, embedder, texts: set[str]):
        ordered = sorted(texts)
        self.of = dict(zip(ordered, embedder.encode(ordered)))  # float32: ONNX Runtime's batches

    def __call__(self, text: str) -> np.ndarray:
        return self.of[text]


def train(chosen: list[dict], vectors: Vectors, regularisation: float, model: str, threshold: float) -> StandingReader:
    positive = [s for src in chosen for s in src["positive"]]
    negative = [s for src in chosen for message in src["negative"] for s in candidate_sentences(message)]
    x = np.array([vectors(s) for s in positive + negative])
    y = np.array([1.0] * len(positive) + [0.0] * len(negative))
    weights, bias = fit(x, y, regularisation)
    return StandingReader(model, weights.astype(np.float32), bias, threshold)


def proposed(reader: StandingReader, embedder, vectors: Vectors, messages: list[str]) -> float:
    """The share of `messages` memchat would propose with `reader`."""
    return float(np.mean([proposes(t, embedder, vectors, reader) for t in messages])) if messages else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--locomo", type=Path, default=REPO.parent / "shared" / "data" / "locomo" / "locomo-dev.json")
    parser.add_argument("--out", type=Path, default=READER_FILE)
    args = parser.parse_args()

    import tempfile

    from memory.embedding import Embedder

    found = sources(args.locomo)
    texts = {s for src in found.values() for s in src["positive"]}
    texts |= {s for src in found.values() for m in src["negative"] + src.get("lasting", []) for s in candidate_sentences(m)}
    # float32 through the ONNX copy, on every CPU: the vectors a chat message gets (encode_query);
    # the copy (~90 MB) is exported into a scratch folder and gone once every vector is made.
    with tempfile.TemporaryDirectory(prefix="memchat-reader-") as scratch:
        embedder = Embedder(dtype="float32", cache_dir=Path(scratch))
        if embedder.quick_engine() is None:
            raise SystemExit(f"no ONNX copy of the embedder ({embedder.engine}): the reader must fit its vectors")
        vectors = Vectors(embedder, texts)
    table = []
    for regularisation in REGULARISATION:
        for threshold in THRESHOLDS:
            row = {"regularisation": regularisation, "threshold": threshold}
            for i, fold in enumerate(FOLDS):
                rest = [found[n] for j, f in enumerate(FOLDS) if j != i for n in f] + [found["others"]]
                reader = train(rest, vectors, regularisation, embedder.model_id, threshold)
                lasting = [m for n in fold for m in found[n]["lasting"]]
                not_lasting = [m for n in fold for m in found[n]["not_lasting"]]
                row["+".join(fold)] = [round(proposed(reader, embedder, vectors, lasting), 4),
                                       round(proposed(reader, embedder, vectors, not_lasting), 4)]
            people = [row["people-dev"], row["people-test"]]
            row["people_proposed"] = round(float(np.mean([p[0] for p in people])), 4)
            row["people_false"] = round(float(np.mean([p[1] for p in people])), 4)
            table.append(row)
            print(row, flush=True)
    allowed = [r for r in table if r["people_false"] <= MAX_FALSE]
    best = max(allowed, key=lambda r: (r["people_proposed"], -r["people_false"]))
    reader = train(list(found.values()), vectors, best["regularisation"], embedder.model_id, best["threshold"])
    args.out.write_text(json.dumps({
        "about": "assistant/standing_proposal.py; written by data/make_standing_reader.py",
        "model": embedder.model_id, "dim": int(len(reader.weights)), "embedding_dtype": embedder.dtype,
        "regularisation": best["regularisation"], "threshold": best["threshold"],
        "chosen_by": f"cross-validation (FOLDS): the most instructions and preferences proposed with at most "
                     f"{MAX_FALSE:.0%} false on the people's other messages",
        "cross_validation": table,
        "trained_on": {name: {"positive": len(src["positive"]), "negative_messages": len(src["negative"])}
                       for name, src in found.items()},
        "bias": round(reader.bias, 7), "weights": [round(float(w), 7) for w in reader.weights],
    }, indent=1) + "\n")
    print(f"chose regularisation {best['regularisation']}, threshold {best['threshold']}; wrote {args.out}")


if __name__ == "__main__":
    main()
