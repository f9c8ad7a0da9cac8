"""The standing-memory proposal with its learned reading (assistant/standing_proposal.py): what it
adds to the rule on text neither was made on, what it must not propose, and the chat loop asking.

The floors are a little short of what was measured once on the held-out parts after the reader was
chosen by cross-validation on the others (docs/answers.md): planted instructions and preferences
of the assistant set's held-out people 37 of 64 (the rule alone 25), their other messages 7 of 326
proposed (the rule 1), the labelled held-out statements 19 of 20 with 3 false, and the two thirds
of LoCoMo's dev split it was not trained on 16 of 968 (the rule 15)."""
from __future__ import annotations

import json
import sys

import pytest

from assistant.backends.gemini import GeminiBackend
from assistant.chat import ChatService
from assistant.standing import reads_as_standing
from assistant.standing_proposal import READER_FILE, StandingReader, candidate_sentences, packaged_reader, proposes
from memory.embedding import DEFAULT_MODEL, Embedder
from tests.conftest import LOCOMO, REPO
from tests.standins import StandIn

sys.path.insert(0, str(REPO / "data"))
from make_standing_reader import MAX_FALSE, assistant_set, labelled, person_turns, sources  # noqa: E402

KEY = "AIzaStandInKey-0123456789abcdef"


def test_the_shipped_reader_is_the_choice_its_cross_validation_table_makes():
    """No hand-picked threshold: the file's setting is the table's best under the false-proposal cap."""
    found = json.loads(READER_FILE.read_text())
    allowed = [r for r in found["cross_validation"] if r["people_false"] <= MAX_FALSE]
    best = max(allowed, key=lambda r: (r["people_proposed"], -r["people_false"]))
    assert (found["regularisation"], found["threshold"]) == (best["regularisation"], best["threshold"])
    assert found["model"] == DEFAULT_MODEL and found["dim"] == len(found["weights"]) == 384
    assert found["embedding_dtype"] == "float32"  # the ONNX copy's arithmetic, what a chat message gets


def test_the_trainer_reads_nothing_of_the_held_out_parts():
    """No held-out instruction or preference, nor any labelled held-out statement, is among what the
    reader learns from (LoCoMo's place taken by the fixture, so this runs without ../shared). The
    held-out people's other turns may repeat the generator's courtesies and noise ("Thanks. I'll
    report back."), which every part shares."""
    found = sources(REPO / "tests" / "data" / "locomo-mini.json").values()
    learned = {t for src in found for t in src["positive"] + src["negative"]}
    learned_sentences = {s for src in found for t in src["negative"] for s in candidate_sentences(t)}
    said, planted, _ = assistant_set("heldout")
    lasting, not_lasting = labelled("heldout")
    held_out = said + planted + lasting + not_lasting
    assert len(learned) > 900
    assert not set(held_out) & learned
    assert not {s for t in held_out for s in candidate_sentences(t)} & (learned | learned_sentences)


def test_candidate_sentences_leave_out_questions_one_off_times_and_things_at_hand():
    text = "Metric units only, please. Can you convert this? Keep it short today. I'm gluten-intolerant."
    assert candidate_sentences(text) == ["Metric units only, please.", "I'm gluten-intolerant."]


def test_the_learned_reading_proposes_more_of_the_held_out_habits_than_the_rule(embedder):
    said, planted, other = assistant_set("heldout")
    rule = sum(map(reads_as_standing, planted))
    both = sum(proposes(t, embedder) for t in planted)
    assert both >= 34 and both >= rule + 8, (rule, both)
    assert sum(proposes(t, embedder) for t in other) / len(other) <= 0.03  # measured 2.1 %, the rule 0.3 %


def test_the_labelled_held_out_statements_with_the_learned_reading(embedder):
    lasting, not_lasting = labelled("heldout")
    right = sum(proposes(t, embedder) for t in lasting)
    wrong = sum(proposes(t, embedder) for t in not_lasting)
    assert right >= 18 and wrong <= 4, (right, wrong)  # measured 19 and 3 (the rule 18 and 2)


@pytest.mark.skipif(not LOCOMO.exists(), reason="LoCoMo is not in the repository (its licence); ../shared has it")
def test_what_friends_say_to_each_other_is_still_rarely_proposed(embedder):
    """The cap of test_standing.py's LoCoMo test, with the learned reading, on the two thirds of
    LoCoMo's dev split it was not trained on (the first third is among its negatives: friends'
    values and likings read like preferences). Vectors as a chat message gets them: ONNX float32."""
    said = person_turns(LOCOMO)
    unseen = said[len(said) // 3 :]  # the trainer's own split
    sentences = sorted({s for t in unseen if not reads_as_standing(t) for s in candidate_sentences(t)})
    vectors = dict(zip(sentences, embedder.quick_engine().encode_many(sentences)))
    rate = sum(proposes(t, embedder, vectors.get) for t in unseen) / len(unseen)
    assert len(unseen) > 900 and rate <= 0.02, rate


def test_another_embedding_model_leaves_the_proposal_to_the_rule(embedder):
    """The weights belong to one model's vectors: with another, only the rule proposes."""
    assert not reads_as_standing("Metric units only, please.")
    assert proposes("Metric units only, please.", embedder)
    other = Embedder("sentence-transformers/all-mpnet-base-v2")  # never loaded: nothing is encoded
    assert packaged_reader() is not None and not packaged_reader().applies(other)
    assert not proposes("Metric units only, please.", other)
    assert proposes("Keep answers short.", other)  # the rule's own


@pytest.mark.parametrize("fields", ['"weights": null, "bias": 0, "threshold": 0.5',
                                    '"weights": [0.5, 1.0], "bias": 0, "threshold": 0',
                                    '"weights": [0.5, 1.0], "bias": "x", "threshold": 0.5'])
def test_a_reader_file_that_cannot_be_read_leaves_the_rule(tmp_path, monkeypatch, embedder, fields):
    broken = tmp_path / "reader.json"
    broken.write_text('{"model": "all-MiniLM-L6-v2", ' + fields + "}")
    with pytest.raises((TypeError, ValueError)):
        StandingReader.from_file(broken)
    real = StandingReader.from_file
    monkeypatch.setattr(StandingReader, "from_file", classmethod(lambda cls: real(broken)))
    packaged_reader.cache_clear()
    try:
        assert packaged_reader() is None
        assert not proposes("Metric units only, please.", embedder)  # the reading's own
        assert proposes("Keep answers short.", embedder)  # the rule's
    finally:
        monkeypatch.undo()
        packaged_reader.cache_clear()
    assert packaged_reader() is not None


@pytest.mark.parametrize("text", ["Never mind.", "I love this!", "I prefer we meet Tuesday this week.",
                                  "My sister Ana lives in Lyon.", "What's the weather like in Lisbon?"])
def test_what_the_readme_says_is_not_proposed_is_not(embedder, text):
    assert not proposes(text, embedder)


def test_the_chat_asks_about_what_the_learned_reading_finds(memory):
    with StandIn("gemini") as server:
        service = ChatService(memory, GeminiBackend("gemini-stand-in", KEY, server.url, 10.0))
        said = service.ask("Just so you know, I'm gluten-intolerant.")
        assert said.proposal == said.user_turn_id and memory.pins() == []  # proposed, never pinned
        assert "propose_ms" in said.timings
        assert service.ask("My sister Ana lives in Lyon.").proposal is None
        assert service.ask("I went hiking with my kids last weekend.").proposal is None
