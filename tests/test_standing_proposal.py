"""The standing-memory proposal with its learned reading (assistant/standing_proposal.py): what it
adds to the rule on text neither was made on, what it must not propose, and the chat loop asking.

The floors are a little under what was measured once on the held-out parts after the reader was
chosen by cross-validation on the others (docs/answers.md): planted instructions and preferences
of the assistant set's held-out people 34 of 64 (the rule alone 25), their other messages 4 of 326
proposed, the labelled held-out statements 19 of 20 with 2 false, LoCoMo 23 of 1,451 (the rule 22)."""
from __future__ import annotations

import json
import sys

import pytest

from assistant.backends.gemini import GeminiBackend
from assistant.chat import ChatService
from assistant.standing import reads_as_standing
from assistant.standing_proposal import READER_FILE, candidate_sentences, packaged_reader, proposes
from memory.embedding import DEFAULT_MODEL, Embedder
from memory.io import read_records
from tests.conftest import LOCOMO, REPO
from tests.standins import StandIn

sys.path.insert(0, str(REPO / "data"))
from make_standing_reader import MAX_FALSE, assistant_set, labelled  # noqa: E402

KEY = "AIzaStandInKey-0123456789abcdef"


def test_the_shipped_reader_is_the_choice_its_cross_validation_table_makes():
    """No hand-picked threshold: the file's setting is the table's best under the false-proposal cap."""
    found = json.loads(READER_FILE.read_text())
    allowed = [r for r in found["cross_validation"] if r["people_false"] <= MAX_FALSE]
    best = max(allowed, key=lambda r: (r["people_proposed"], -r["people_false"]))
    assert (found["regularisation"], found["threshold"]) == (best["regularisation"], best["threshold"])
    assert found["model"] == DEFAULT_MODEL and found["dim"] == len(found["weights"]) == 384
    assert "heldout" not in json.dumps(found["trained_on"])


def test_candidate_sentences_leave_out_questions_one_off_times_and_things_at_hand():
    text = "Metric units only, please. Can you convert this? Keep it short today. I'm gluten-intolerant."
    assert candidate_sentences(text) == ["Metric units only, please.", "I'm gluten-intolerant."]


def test_the_learned_reading_proposes_more_of_the_held_out_habits_than_the_rule(embedder):
    said, planted, other = assistant_set("heldout")
    rule = sum(map(reads_as_standing, planted))
    both = sum(proposes(t, embedder) for t in planted)
    assert both >= 32 and both >= rule + 6, (rule, both)
    assert sum(proposes(t, embedder) for t in other) / len(other) <= 0.02


def test_the_labelled_held_out_statements_with_the_learned_reading(embedder):
    lasting, not_lasting = labelled("heldout")
    right = sum(proposes(t, embedder) for t in lasting)
    wrong = sum(proposes(t, embedder) for t in not_lasting)
    assert right / len(lasting) >= 0.9 and right / (right + wrong) >= 0.85, (right, wrong)


@pytest.mark.skipif(not LOCOMO.exists(), reason="LoCoMo is not in the repository (its licence); ../shared has it")
def test_what_friends_say_to_each_other_is_still_rarely_proposed(embedder):
    """The cap of test_standing.py's LoCoMo test, with the learned reading (a third of LoCoMo's dev
    split is among its training negatives: their values and likings read like preferences)."""
    said = [r.text.split(": ", 1)[1] for r in read_records(LOCOMO).records]
    unread = [t for t in said if not reads_as_standing(t)]
    sentences = sorted({s for t in unread for s in candidate_sentences(t)})
    vectors = dict(zip(sentences, embedder.encode(sentences)))
    rate = sum(proposes(t, embedder, vectors.get) for t in said) / len(said)
    assert rate <= 0.02, rate


def test_another_embedding_model_leaves_the_proposal_to_the_rule(embedder):
    """The weights belong to one model's vectors: with another, only the rule proposes."""
    assert not reads_as_standing("Metric units only, please.")
    assert proposes("Metric units only, please.", embedder)
    other = Embedder("sentence-transformers/all-mpnet-base-v2")  # never loaded: nothing is encoded
    assert packaged_reader() is not None and not packaged_reader().applies(other)
    assert not proposes("Metric units only, please.", other)
    assert proposes("Keep answers short.", other)  # the rule's own


def test_the_chat_asks_about_what_the_learned_reading_finds(memory):
    with StandIn("gemini") as server:
        service = ChatService(memory, GeminiBackend("gemini-stand-in", KEY, server.url, 10.0))
        said = service.ask("Just so you know, I'm gluten-intolerant.")
        assert said.proposal == said.user_turn_id and memory.pins() == []  # proposed, never pinned
        assert "propose_ms" in said.timings
        assert service.ask("My sister Ana lives in Lyon.").proposal is None
        assert service.ask("I went hiking with my kids last weekend.").proposal is None
