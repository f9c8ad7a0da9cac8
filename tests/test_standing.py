"""The standing-memory proposal (assistant/standing.py): which statements read as a lasting
instruction or preference, measured on a labelled list and on what people say to each other.

tests/data/standing-statements.jsonl has three sets, each half lasting instructions or preferences
in varied phrasings and half one-off statements, requests and questions (hard negatives among them):
`dev` (94: 46 lasting, 48 not) was written first and the rule made on it; `second` (40) was written next, measured
(precision 0.93, recall 0.70) and the rule then corrected in general ways; `heldout` (40) was
written after that and measured once, with no change since (docs/answers.md has the figures).
The floors are a little under what was measured, not 1.0 by construction.
"""
from __future__ import annotations

import json

import pytest

from assistant.standing import MAX_PROPOSAL_CHARS, reads_as_standing
from memory.io import read_records
from tests.conftest import LOCOMO, REPO

STATEMENTS = [json.loads(line) for line in (REPO / "tests" / "data" / "standing-statements.jsonl").read_text().splitlines()]
FLOORS = {"dev": (0.95, 0.95), "second": (0.9, 0.95), "heldout": (0.85, 0.8)}  # (precision, recall)


def _scores(rows: list[dict]) -> tuple[float, float]:
    proposed = [r for r in rows if reads_as_standing(r["text"])]
    right = sum(r["standing"] for r in proposed)
    return right / len(proposed), right / sum(r["standing"] for r in rows)


@pytest.mark.parametrize("name", list(FLOORS))
def test_precision_and_recall_on_the_labelled_statements(name):
    rows = [r for r in STATEMENTS if r["set"] == name]
    positives = sum(r["standing"] for r in rows)
    assert len(rows) >= 40 and abs(positives - (len(rows) - positives)) <= 2  # about half and half
    precision, recall = _scores(rows)
    low_precision, low_recall = FLOORS[name]
    assert precision >= low_precision and recall >= low_recall, (name, precision, recall)


def test_the_sets_are_as_large_as_the_measurement_says():
    assert sum(r["set"] == "dev" for r in STATEMENTS) >= 60


@pytest.mark.parametrize("text", [
    "From now on, always give me distances in kilometres.", "Keep answers short.", "I'm vegetarian.",
    "Always format code with syntax highlighting.", "Please don't use emojis in your replies.",
    "I prefer metric units.", "I'm allergic to shellfish.",
])
def test_what_the_issue_names_is_proposed(text):
    assert reads_as_standing(text)


@pytest.mark.parametrize("text", [
    "I always forget my keys.", "Never mind.", "I prefer we meet Tuesday this week.",
    "Can you give me the distance from Paris to Lyon in kilometres?", "Please keep this short, I'm in a hurry.",
])
def test_habits_one_offs_and_questions_are_not(text):
    assert not reads_as_standing(text)


@pytest.mark.parametrize("text", [
    "FYI, give me a summary for every article I send.", "For emails, sign off with my first name only.",
    "Skip the disclaimers.", "Prices in euros, please.", "I love spicy food.", "My favourite colour is green.",
    "I'm a big Arsenal fan.", "By the way, end each reply with a one-line summary.",
    "Any code you write for me should have type hints.", "Assume I'm on Linux when I ask about commands.",
    "How do I prune roses? Also, I'm scared of heights.",
])
def test_the_forms_a_person_uses_with_an_assistant_are_proposed(text):
    """Forms from #23's person-and-assistant conversations: an opener ("FYI", "by the way"), a
    quantified kind ("every article", "any code"), a kind framed first, a verbless request, a plain
    liking of a kind, a favourite, a statement beside a question in one message."""
    assert reads_as_standing(text)


@pytest.mark.parametrize("text", [
    "I love this!", "I love how that turned out.", "I'd like a table for two.", "I want the report by Friday.",
    "That is my favourite.", "Two coffees, please.", "I love you guys.", "Skip the first two steps this time.",
    "My favourite part was the ending.", "Kids, please stop.", "Skip the first two steps.",
    # one-off requests and chit-chat in the forms the rule reads (a quantifier, "please", a modal, "leave")
    "Tell me everything about Rome.", "Give me all the details.", "List every step.", "Make every day count!",
    "Tickets for two, please.", "Restaurants in Lisbon, please.", "All of us should go out sometime.",
    "Every artist should find their voice.", "Leave the keys on the table.", "Drop the kids off at 5.",
    "I'm a big fan of your work.", "He is my favourite.", "My favourite memory is when we went camping.",
    "I'm afraid of losing you.", "I'd love some help with my taxes.",
])
def test_liking_one_thing_at_hand_is_not(text):
    assert not reads_as_standing(text)


def test_a_long_message_is_never_proposed():
    """It would go whole into every prompt."""
    text = "Always give me distances in kilometres. " + "Here is the itinerary I have in mind. " * 12
    assert len(text) > MAX_PROPOSAL_CHARS and not reads_as_standing(text)


def test_few_of_the_sample_memories_are_proposed_and_rightly():
    """data/sample-memories.jsonl: one of its three user turns is a lasting preference, and it alone is proposed."""
    said = [r.text for r in read_records(REPO / "data" / "sample-memories.jsonl").records if r.role == "user"]
    assert [t for t in said if reads_as_standing(t)] == ["I'm allergic to peanuts, so please keep that in mind for recipes."]


@pytest.mark.skipif(not LOCOMO.exists(), reason="LoCoMo is not in the repository (its licence); ../shared has it")
def test_what_friends_say_to_each_other_is_rarely_proposed():
    """LoCoMo's turns are two friends talking, none addressed to an assistant: each proposal there
    would be memchat asking the person about a message that was not for it, so the rate is capped
    at one message in 50. Measured 22 of 1,451 (1.52 %): about 10 encouragement or advice to the
    friend ("keep going and never give up!"), 11 the speaker's own likings ("I love live music",
    "I'm a big fan of pottery"), which are right to propose to a person saying them to memchat, and
    a quoted sign. Before likings and favourites were proposed (#23): 11 (0.76 %)."""
    records = read_records(LOCOMO).records
    said = [r.text.split(": ", 1)[1] for r in records]
    rate = sum(map(reads_as_standing, said)) / len(said)
    assert len(said) > 1000 and rate <= 0.02, rate
