"""Repetition control for the local engines: a repetition penalty and a no-repeat n-gram rule.

Both look at the tokens the reply has generated so far, never at the prompt. A memchat prompt holds
the recalled notes, and the answer should repeat their words ("your cat is called Miso"): the
prompt-wide penalty of ONNX Runtime GenAI's own search options pushed SmolLM2 off the prompt's
words at once (asked to say "banana", it wrote "The Banana: 1234567"), and a prompt-wide n-gram ban
would forbid quoting three tokens of a note. transformers' RepetitionPenaltyLogitsProcessor can skip
the prompt (prompt_ignore_length) but its NoRepeatNGramLogitsProcessor cannot, so both engines use
`shape_logits` below: the torch engine through a LogitsProcessor, the ONNX engine through the
generator's get_logits/set_logits between steps.

The penalty is CTRL's (Keskar et al. 2019, as transformers applies it): a logit of a token already
in the reply is divided by the penalty when positive and multiplied by it when negative, so the
token gets less likely whatever its sign. It runs before temperature, top-k and top-p.
"""
from __future__ import annotations

from typing import Sequence


def banned_tokens(generated: Sequence[int], n: int) -> list[int]:
    """The tokens that would complete an n-gram the reply already holds (n <= 0: none)."""
    if n <= 0 or len(generated) < n:
        return []
    tokens = list(generated)
    prefix = tokens[len(tokens) - n + 1:]  # the last n-1 tokens: what the next one would extend
    return [tokens[i + n - 1] for i in range(len(tokens) - n + 1) if tokens[i:i + n - 1] == prefix]


def shape_logits(row, generated: Sequence[int], penalty: float, n: int):
    """Apply the penalty and the n-gram ban to one row of next-token logits, in place, and return it.
    `row`: a 1-D numpy array or torch tensor (the arithmetic below works on both)."""
    if penalty != 1.0 and len(generated):
        ids = sorted(set(int(t) for t in generated))
        scores = row[ids]
        # positive: divided by the penalty; negative (or -inf): multiplied by it
        row[ids] = scores * ((scores > 0) * (1.0 / penalty - penalty) + penalty)
    banned = banned_tokens(generated, n)
    if banned:
        row[banned] = float("-inf")
    return row


def active(options) -> bool:
    return options.repetition_penalty != 1.0 or options.no_repeat_ngram_size > 0


def torch_processor(prompt_tokens: int, penalty: float, n: int):
    """A transformers LogitsProcessor applying shape_logits to what follows the prompt."""
    from transformers import LogitsProcessor

    class ReplyRepetition(LogitsProcessor):
        def __call__(self, input_ids, scores):
            for row, ids in zip(scores, input_ids):
                shape_logits(row, ids[prompt_tokens:].tolist(), penalty, n)
            return scores

    return ReplyRepetition()
