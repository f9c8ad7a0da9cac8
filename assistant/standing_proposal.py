"""Which of the person's messages memchat proposes to keep as a standing memory: the rule over a
sentence's form (assistant/standing.py), or a learned reading of its sentences' meaning.

The rule reads forms it was written for; on people it was not written for it proposed 25 of the
64 instructions and preferences of the assistant set's held-out part. The learned reading is a
logistic regression over the embedder's vector of each sentence of the message that could be
lasting (no question, no one-off time, nothing at hand: the rule's own guards), trained by
data/make_standing_reader.py on the dev and test parts' planted statements, the labelled statements'
dev and second sets, and, as what is not lasting, the other things those people said, the sample
memories, the project's LoCoMo fixture and a third of LoCoMo's dev split (two friends talking,
whose values and likings read much like preferences). Its regularisation and threshold were chosen
by cross-validation across those sources, leaving one out at a time (standing_reader.json keeps
the table); docs/answers.md has its figures on the parts it never saw.

The weights belong to one embedding model: with any other (a provider, another local model) the
rule proposes alone. Nothing is pinned by either: a proposal is a question to the person.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np

from assistant.standing import _AT_HAND, _ONE_OFF, MAX_PROPOSAL_CHARS, reads_as_standing

READER_FILE = Path(__file__).with_name("standing_reader.json")
# A sentence ends at . ! or ? before a capital letter, a quote or a bracket (as measured: all-lowercase
# text stays one sentence, and "e.g. Vim" splits after "e.g.").
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")


def candidate_sentences(text: str) -> list[str]:
    """The sentences of `text` that could state something lasting: not a question, naming no
    one-off time ("tomorrow") and nothing at hand ("this", "the second paragraph")."""
    out = []
    for sentence in _SENTENCE_END.split(text.strip()):
        lowered = sentence.lower()
        if sentence and not sentence.rstrip().endswith("?") and not _ONE_OFF.search(lowered) \
                and not _AT_HAND.search(lowered):
            out.append(sentence)
    return out


class StandingReader:
    """p(lasting) = sigmoid(w . v + b) for a sentence's unit vector v; a message reads as lasting
    when one of its candidate sentences reaches `threshold`."""

    def __init__(self, model: str, weights: np.ndarray, bias: float, threshold: float):
        self.model, self.weights, self.bias, self.threshold = model, weights, bias, threshold

    @classmethod
    def from_file(cls, path: Path = READER_FILE) -> "StandingReader":
        found = json.loads(Path(path).read_text(encoding="utf-8"))
        weights = np.asarray(found["weights"], dtype=np.float32)
        bias, threshold = float(found["bias"]), float(found["threshold"])
        if weights.ndim != 1 or not len(weights) or not np.isfinite(weights).all() or not np.isfinite(bias):
            raise ValueError(f"{path}: weights and bias must be numbers")
        if not 0.0 < threshold < 1.0:  # 0 would propose every sentence
            raise ValueError(f"{path}: threshold must lie between 0 and 1, not {threshold}")
        return cls(str(found["model"]), weights, bias, threshold)

    def applies(self, embedder) -> bool:
        return getattr(embedder, "model_id", None) == self.model and getattr(embedder, "dim", None) == len(self.weights)

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(np.asarray(vectors, dtype=np.float32) @ self.weights + self.bias)))

    def reads_as_lasting(self, text: str, encode: Callable[[str], np.ndarray | None]) -> bool:
        """`encode`: one text's vector, None when it cannot be had (a provider that is down)."""
        for sentence in candidate_sentences(text):
            vector = encode(sentence)
            if vector is not None and float(self.probabilities(vector[None, :])[0]) >= self.threshold:
                return True
        return False


@lru_cache(maxsize=1)
def packaged_reader() -> StandingReader | None:
    try:
        return StandingReader.from_file()
    except (OSError, ValueError, KeyError, TypeError):  # a broken install: the rule still proposes
        return None


def proposes(text: str, embedder=None, encode: Callable[[str], np.ndarray | None] | None = None,
             reader: StandingReader | None = None) -> bool:
    """Whether memchat should ask the person to keep `text` for every chat. `embedder` and
    `encode` (its one-text encoder, cached: a one-sentence message costs no new encode after its
    own was stored) let the learned reading join the rule; without them, the rule alone.
    `reader`: the packaged one unless given (data/make_standing_reader.py scores its candidates)."""
    if reads_as_standing(text):
        return True
    if not text or len(text) > MAX_PROPOSAL_CHARS or embedder is None:
        return False
    reader = reader or packaged_reader()
    if reader is None or not reader.applies(embedder):
        return False
    return reader.reads_as_lasting(text, encode or embedder.encode_query)
