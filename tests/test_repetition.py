"""Repetition control (assistant/backends/repetition.py) and its measure (assistant/repetition_eval.py):
the metric, the two knobs on both local engines, and how the remote backends take or refuse them."""
from __future__ import annotations

import threading
from collections import Counter

import numpy as np
import pytest
import torch

from assistant.backends.base import GenerationOptions, StreamState
from assistant.backends.gemini import GeminiBackend
from assistant.backends.hf import HFBackend
from assistant.backends.repetition import banned_tokens, shape_logits, torch_processor
from assistant.repetition_eval import load_prompts, loops, repeated_share, run_repetition_eval
from memory.errors import BadInput
from tests.conftest import REPO

LOOP = "The tree was a white tree with a white face."  # what SmolLM2 wrote over and over (issue #25)
# Which prompt makes greedy SmolLM2 loop depends on the engine and on the CPU's kernels (int4
# on AVX2 and on AVX-512 round differently): the knobs are tried on the first of the project's
# own open prompts that loops without them, with a reply long enough (64 tokens) to loop in.
PROMPTS = load_prompts(REPO / "data" / "repetition-prompts.txt")


# -- the measure --------------------------------------------------------------------------------
def test_a_reply_loops_when_a_run_of_four_words_comes_three_times():
    assert loops(" ".join([LOOP] * 3))
    assert not loops(" ".join([LOOP] * 2))  # twice is not yet a loop
    assert not loops("Once upon a time a fox met a crow; the crow had cheese, and the fox wanted it.")
    assert loops("the WHITE tree, the white tree! The white tree... the white tree")  # case and punctuation aside
    assert not loops("")


def test_the_repeated_share_counts_four_grams_that_came_before():
    assert repeated_share("one two three four five six") == 0.0
    assert repeated_share("a b c d a b c d") == pytest.approx(1 / 5)  # 5 four-grams, 'a b c d' once again
    assert repeated_share("too short") == 0.0
    assert repeated_share(" ".join([LOOP] * 10)) > 0.8


def test_the_prompt_file_is_read_and_a_bad_one_refused(tmp_path):
    prompts = load_prompts(REPO / "data" / "repetition-prompts.txt")
    assert 20 <= len(prompts) <= 40 and all(not p.startswith("#") for p in prompts)
    empty = tmp_path / "empty.txt"
    empty.write_text("# only a comment\n\n")
    with pytest.raises(BadInput, match="no prompts"):
        load_prompts(empty)
    with pytest.raises(BadInput, match="cannot read"):
        load_prompts(tmp_path / "missing.txt")


# -- the logits rule ----------------------------------------------------------------------------
def test_banned_tokens_are_those_completing_an_ngram_the_reply_holds():
    assert banned_tokens([1, 2, 3, 1, 2], 3) == [3]  # "1 2" again: 3 would repeat "1 2 3"
    assert banned_tokens([1, 2, 3, 1, 4], 3) == []
    assert banned_tokens([5, 6, 5, 7, 5], 2) == [6, 7]
    assert banned_tokens([1, 2], 3) == [] and banned_tokens([1, 2, 1, 2], 0) == []
    assert sorted(banned_tokens([4, 9, 4], 1)) == [4, 4, 9]  # n=1: no token twice


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_the_penalty_lowers_every_repeated_token_and_nothing_else(kind):
    values = [2.0, -2.0, 1.0, 0.5, float("-inf")]
    row = np.array(values, dtype=np.float32) if kind == "numpy" else torch.tensor(values)
    shape_logits(row, [0, 1, 1, 4], 2.0, 0)
    assert [float(v) for v in row] == [1.0, -4.0, 1.0, 0.5, float("-inf")]  # positive halved, negative doubled
    shape_logits(row, [2, 3, 2], 1.0, 2)  # no penalty; "2" again: 3 would repeat "2 3"
    assert float(row[3]) == float("-inf") and float(row[2]) == 1.0


def test_the_torch_processor_leaves_the_prompt_alone():
    prompt = [7, 7, 7]
    scores = torch.ones(1, 10)
    out = torch_processor(len(prompt), 2.0, 1)(torch.tensor([prompt + [3, 4]]), scores)
    assert out[0].tolist() == [1, 1, 1, float("-inf"), float("-inf"), 1, 1, 1, 1, 1]  # 7: prompt only


# -- both engines, greedy -----------------------------------------------------------------------
def _reply(backend, prompt: str, **knobs) -> tuple[str, list[int]]:
    knobs = {"repetition_penalty": 1.0, "no_repeat_ngram_size": 0, **knobs}  # each knob alone, the other off
    options = GenerationOptions(greedy=True, max_new_tokens=64, **knobs)
    text = "".join(backend.stream([{"role": "user", "content": prompt}], options, threading.Event(), StreamState()))
    tokenizer = backend.engine._tokenizer
    ids = tokenizer.encode(text).tolist() if backend.runtime == "onnx" else tokenizer(text, add_special_tokens=False)["input_ids"]
    return text, ids


def _a_looping_prompt(backend) -> tuple[str, str, list[int]]:
    for prompt in PROMPTS[:12]:
        plain, ids = _reply(backend, prompt)
        if loops(plain, n=3):
            return prompt, plain, ids
    pytest.fail("none of the first 12 prompts loops without the knobs (the premise of the test)")


@pytest.mark.parametrize("engine", ["onnx_backend", "torch_backend"])
def test_each_knob_stops_the_loop_on_both_engines(engine, request):
    backend = request.getfixturevalue(engine)
    prompt, plain, plain_ids = _a_looping_prompt(backend)
    trigrams = Counter(zip(plain_ids, plain_ids[1:], plain_ids[2:]))
    assert max(trigrams.values()) >= 2, plain  # the loop is there in tokens too

    penalized, _ = _reply(backend, prompt, repetition_penalty=2.0)
    assert not loops(penalized, n=3) and penalized != plain, penalized

    blocked, ids = _reply(backend, prompt, no_repeat_ngram_size=3)
    assert max(Counter(zip(ids, ids[1:], ids[2:])).values()) == 1, blocked  # no run of 3 tokens twice
    assert blocked != plain and len(ids) > 8  # the reply goes on, only without the repeats


def test_the_eval_reports_per_setting_on_the_same_seeds(onnx_backend):
    options = GenerationOptions(max_new_tokens=24)
    prompts = ["Repeat after me: I like cake. I like cake. I like cake.", "Name three fruits."]
    seen = []
    result = run_repetition_eval(prompts, onnx_backend, options, [(1.0, 0), (1.0, 3)], 1,
                                 lambda *step: seen.append(step))
    assert [(s["repetition_penalty"], s["no_repeat_ngram_size"]) for s in result["settings"]] == [(1.0, 0), (1.0, 3)]
    assert [r["seed"] for s in result["settings"] for r in s["rows"]] == [0, 1, 0, 1]
    assert all(s["replies"] == 2 and 0.0 <= s["looping"] <= 1.0 for s in result["settings"])
    assert seen[-1][1:] == (4, 4) and result["max_new_tokens"] == 24


# -- the remote backends ------------------------------------------------------------------------
def test_the_default_penalty_is_never_reported_as_ignored():
    assert GenerationOptions().repetition_penalty != 1.0  # on by default (docs/answers.md), yet no warning
    assert GenerationOptions().unsupported(GeminiBackend.supported_options) == []


def test_gemini_reports_both_knobs_unsupported_and_hf_the_ngram_only():
    knobs = GenerationOptions(repetition_penalty=1.2, no_repeat_ngram_size=3)
    assert knobs.unsupported(GeminiBackend.supported_options) == ["repetition_penalty", "no_repeat_ngram_size"]
    assert knobs.unsupported(HFBackend.supported_options) == ["no_repeat_ngram_size"]
    off = GenerationOptions(repetition_penalty=1.0, no_repeat_ngram_size=0)
    assert off.unsupported(GeminiBackend.supported_options) == []  # off is honoured everywhere


def test_hf_sends_the_penalty_only_when_set(monkeypatch):
    import huggingface_hub.constants

    from tests.standins import StandIn

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # the stand-in is loopback
    with StandIn("openai") as server:
        backend = HFBackend("stand-in-model", "hf_test", server.url + "/v1", 10.0)
        for penalty in (1.0, 1.3):
            "".join(backend.stream([{"role": "user", "content": "hi"}], GenerationOptions(repetition_penalty=penalty),
                                   threading.Event(), StreamState()))
    first, second = (r.body for r in server.requests)
    assert "repetition_penalty" not in first and second["repetition_penalty"] == 1.3
