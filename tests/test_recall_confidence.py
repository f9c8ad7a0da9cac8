"""Confidence-weighted fusion (memory/confidence.py) and long turns scored over their windows."""
from __future__ import annotations

import numpy as np
import pytest

from memory import confidence
from memory.dense_scores import mean_over_windows
from memory.recall import RecallFilter, RecallWeights, content_words, dense_candidates, _stem
from memory.turn import NewTurn

DENSE = RecallWeights.only("dense")


@pytest.mark.parametrize("question, about_the_person", [
    ("What is my dentist's name?", True),
    ("Which city do I live in?", True),
    ("Suggest a dinner I could cook for friends", True),
    ("What did you recommend for my back pain?", False),  # memchat's own words
    ("Can you repeat your advice about my budget?", False),
    ("How far is Lyon from Geneva?", False),
    ("Where does Ben work?", False),
])
def test_which_questions_ask_about_the_person(question, about_the_person):
    assert confidence.asks_about_the_person(question) is about_the_person


def test_a_long_turn_scores_the_mean_of_its_windows(memory, embedder):
    on_topic = "The spare house key is hidden under the blue flowerpot by the door."
    long_text = on_topic + " " + " ".join(f"Paragraph {i} is about compost, mulch and tomato seedlings." for i in range(60))
    turn = memory.remember(long_text)
    windows = embedder.split(long_text)
    assert len(windows) > 2
    question = "where is the spare key hidden"
    qvec = embedder.encode_query(question)
    with memory.engine.connect() as conn:
        scored = dict(dense_candidates(conn, memory.index.guard, qvec, 5, RecallFilter()))
        vectors = [np.frombuffer(b, dtype=np.float32) for (b,) in conn.exec_driver_sql(
            "SELECT vector FROM embeddings WHERE turn_id = ? ORDER BY chunk", (turn.id,))]
        best = max(float(v @ qvec) for v in vectors)
        assert scored[turn.id] == pytest.approx(float(np.mean([v @ qvec for v in vectors])), abs=1e-5)
        assert scored[turn.id] < best - 0.05  # the first window alone would have scored far higher
        assert mean_over_windows(conn, qvec, [turn.id], embedder.model_id)[turn.id] == pytest.approx(scored[turn.id])
        # filtered (exact) search scores it the same way
        exact = dict(dense_candidates(conn, memory.index.guard, qvec, 5, RecallFilter(role="user")))
        assert exact[turn.id] == pytest.approx(scored[turn.id], abs=1e-5)


def test_a_question_about_the_person_prefers_what_the_person_said(memory, monkeypatch):
    said = memory.remember("My dentist is Dr. Okafor on Elm Street.", role="user", conversation_id="c")
    reply = memory.remember(
        "Finding a good dentist matters. Ask friends which dentist they see, check that the dentist "
        "takes your insurance, and book a check-up with the dentist every six months. A dentist on a "
        "street near your work saves time; ask the dentist's name when you call.", role="assistant", conversation_id="c")
    memory.remember_many([NewTurn(text=f"Note {i}: the weather was mild and we walked by the river.", conversation_id="c")
                          for i in range(30)])
    def scores(question):
        return {h.turn.id: h.score for h in memory.recall(question, k=2)}

    about_me, about_you = "What is my dentist's name?", "What did you say about my dentist's name?"
    held_back, asked_of_you = scores(about_me), scores(about_you)
    assert list(held_back)[0] == said.id, held_back
    monkeypatch.setattr(confidence, "REPLY_SHARE", 1.0)  # the same recall without the preference
    assert held_back[reply.id] < scores(about_me)[reply.id]
    assert asked_of_you == scores(about_you)  # asked about memchat's own words, nothing is held back


def test_lexical_share_follows_how_much_of_the_query_a_turn_says(memory):
    rare = memory.remember("Ben: I have started cello lessons with a teacher.", conversation_id="c")
    memory.remember_many([NewTurn(text=f"Ben: note {i} about the weekend and the weather.", conversation_id="c")
                          for i in range(40)])
    common = memory.remember("Ben: see you at the weekend.", conversation_id="c")  # not beside the cello turn
    question = "Which cello teacher is Ben visiting?"
    with memory.engine.connect() as conn:
        words = content_words(question)
        shares = confidence.lexical_factors(conn, words, {w: _stem(conn, w) for w in words}, [rare.id, common.id])
    assert shares[rare.id] > 2 * shares[common.id] > 0  # "Ben" is in every turn: it says little
    assert 0 < shares[rare.id] < 1  # even the best says part of the query ("visiting" is nowhere)


def test_dense_share_is_one_at_the_top_and_nothing_at_the_median():
    shares = confidence.dense_factors([(1, 0.7), (2, 0.5), (3, 0.4), (4, 0.3), (5, 0.2)])
    assert shares[1] == 1.0 and shares[3] == 0.0 and shares[4] == shares[5] == 0.0
    assert shares[2] == pytest.approx(1 / 3)
    assert confidence.dense_factors([(1, 0.5)]) == {}  # one candidate: nothing to compare


def test_a_single_signal_ranks_as_it_is():
    assert not DENSE.fused() and not RecallWeights.only("lexical").fused() and RecallWeights().fused()
