"""Confidence-weighted fusion (memory/confidence.py) and long turns scored over their windows."""
from __future__ import annotations

import numpy as np
import pytest

from memory import confidence
from memory.dense_scores import mean_over_windows
from memory.query_words import stem
from memory.recall import RecallFilter, RecallWeights, content_words, dense_candidates
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
    ("Remind me where Ben works", False),  # a request, not about the person
    ("How do I reset the router?", False),  # a how-to: memchat's earlier reply is the answer
    ("What did you think of my essay?", False),
    ("You once told me about a good café, which was it?", False),
    ("Tell me which city my sister moved to", True),  # "my sister" still asks about the person
])
def test_which_questions_ask_about_the_person(question, about_the_person):
    assert confidence.asks_about_the_person(question) is about_the_person


@pytest.mark.parametrize("where", ["first window", "last window"])
def test_a_long_turn_scores_the_mean_of_its_windows(memory, embedder, where):
    """Whichever window the index finds it by: the first (which stops short of the text) or a later one."""
    on_topic = "The spare house key is hidden under the blue flowerpot by the door."
    filler = " ".join(f"Paragraph {i} is about compost, mulch and tomato seedlings." for i in range(60))
    long_text = f"{on_topic} {filler}" if where == "first window" else f"{filler} {on_topic}"
    turn = memory.remember(long_text)
    windows = embedder.split(long_text)
    assert len(windows) > 2
    question = "where is the spare key hidden"
    qvec = embedder.encode_query(question)
    # Twelve turns at right angles to the question (cosine 0), a little closer than the compost
    # windows (-0.03 to -0.01) and below the long turn's mean (0.01-0.03): in the "first window"
    # case the index finds the long turn by that window alone, and it must still score the mean.
    rng = np.random.default_rng(7)
    others = rng.normal(size=(12, len(qvec))).astype(np.float32)
    others -= np.outer(others @ qvec, qvec)
    memory.remember_many([NewTurn(text=f"unrelated note {i}") for i in range(12)],
                         vectors=others / np.linalg.norm(others, axis=1, keepdims=True))
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
        shares = confidence.lexical_factors(conn, words, {w: stem(conn, w) for w in words}, [rare.id, common.id])
    assert shares[rare.id] > 2 * shares[common.id] > 0  # "Ben" is in every turn: it says little
    assert 0 < shares[rare.id] < 1  # even the best says part of the query ("visiting" is nowhere)


def test_dense_share_is_one_at_the_top_and_the_floor_from_the_median_down():
    shares = confidence.dense_factors([(1, 0.7), (2, 0.5), (3, 0.4), (4, 0.3), (5, 0.2)])
    floor = confidence.DENSE_FLOOR
    assert shares[1] == 1.0 and shares[3] == shares[4] == shares[5] == floor
    assert shares[2] == pytest.approx(1 / 3)
    assert confidence.dense_factors([(1, 0.5)]) == {}  # one candidate: nothing to compare


def test_a_neighbours_word_counts_at_the_neighbour_weight(memory):
    from memory.fulltext import NEIGHBOUR_WEIGHT

    memory.remember_many([NewTurn(text=f"filler {i} about the weather", conversation_id="a") for i in range(20)])
    asked = memory.remember("Where did you go last summer?", conversation_id="c")
    answer = memory.remember("Mostly Portugal, we drove along the coast.", conversation_id="c")
    with memory.engine.connect() as conn:
        words = ["portugal"]
        shares = confidence.lexical_factors(conn, words, {w: stem(conn, w) for w in words}, [asked.id, answer.id])
    assert shares[answer.id] > 0 and shares[asked.id] == pytest.approx(NEIGHBOUR_WEIGHT * shares[answer.id])


def test_a_single_signal_ranks_as_it_is(memory):
    assert not DENSE.fused() and not RecallWeights.only("lexical").fused() and RecallWeights().fused()
    memory.remember_many([NewTurn(text=t) for t in
                          ["My sister lives in Lisbon.", "I cook ramen on Fridays.", "The dentist is on Elm Street.",
                           "I went hiking near Porto.", "My sister loves ramen too."]])
    question = "Where does my sister live?"
    with memory.engine.connect() as conn:
        order = [t for t, _ in dense_candidates(conn, memory.index.guard, memory.embedder.encode_query(question), 5,
                                                RecallFilter())]
    assert [h.turn.id for h in memory.recall(question, k=5, weights=DENSE)] == order


def test_word_counts_are_exact_up_to_the_cap_and_estimated_past_it(memory, monkeypatch):
    from memory import query_words

    # "meeting" in every second turn, "Quito" in three: 200 turns
    memory.remember_many([NewTurn(text=f"Turn {i}: " + ("the meeting moved again." if i % 2 else "a quiet day."),
                                  conversation_id=f"c{i // 10}") for i in range(200)])
    memory.remember_many([NewTurn(text=f"Day {i}: we flew to Quito.", conversation_id="q") for i in range(3)])
    with memory.engine.connect() as conn:
        exact = query_words.rows_holding(conn, ["meeting", "quito", "nowhere"])
        monkeypatch.setattr(query_words, "COUNTED_EXACTLY", 20)
        conn.info.pop("word_counts")  # counts are kept with the connection until the store changes
        estimated = query_words.rows_holding(conn, ["meeting", "quito"])
        truth = conn.exec_driver_sql("SELECT count(*) FROM turns_fts WHERE turns_fts MATCH 'meeting'").scalar()
    assert exact == {"meeting": truth, "quito": 3, "nowhere": 0}
    assert estimated["quito"] == 3  # under the cap: still exact
    assert abs(estimated["meeting"] - truth) <= 0.15 * truth  # from the first 21 matches' reach into the ids


def test_word_counts_kept_with_the_connection_follow_every_change_of_the_index(memory):
    from memory import query_words

    def quito():
        with memory.engine.connect() as conn:  # the pool hands back the same connection, and its counts
            return query_words.rows_holding(conn, ["quito"])["quito"]

    first = memory.remember("We flew to Quito.", conversation_id="q")
    middle = memory.remember("Quito again in May.", conversation_id="r")
    memory.remember("Quito once more.", conversation_id="s")
    assert quito() == 3
    memory.forget([middle.id])  # the ids' bounds stay: the forget generation moves
    assert quito() == 2
    memory.remember_many([NewTurn(text="Quito again in May.", conversation_id="r", id=middle.id)])
    assert memory.get(middle.id) is not None  # back under its freed id: bounds and generation stay
    assert quito() == 3
    memory.forget([first.id])
    assert quito() == 2


@pytest.mark.parametrize("doclist_below", [3_000, 1], ids=["doclists", "scratch table"])
def test_who_says_a_word_tells_own_words_from_a_neighbours_both_ways(memory, monkeypatch, doclist_below):
    from memory import query_words

    monkeypatch.setattr(query_words, "READ_DOCLIST_BELOW", doclist_below)  # 1: every word read the common way
    asked = memory.remember("Where did you go hiking last summer? Check the foo bar config.", conversation_id="c")
    answer = memory.remember("Mostly Portugal, we hiked along the coast near Zyxqv; foo_bar is set.", conversation_id="c")
    words = ["portugal", "hiking", "hikes", "foo_bar", "coffee"]
    with memory.engine.connect() as conn:
        counts = query_words.rows_holding(conn, words)
        said = query_words.who_says(conn, [asked.id, answer.id], {w: (stem(conn, w), counts[w]) for w in words})
        blocks = conn.exec_driver_sql("SELECT block FROM temp.said_data").scalars().all()
    # "hiked" and "hikes" stem as "hiking" does: each word is credited; "foo_bar" is the phrase "foo bar"
    assert said[asked.id] == {"portugal": False, "hiking": True, "hikes": True, "foo_bar": True}
    assert said[answer.id] == {"portugal": True, "hiking": True, "hikes": True, "foo_bar": True}
    assert not any(b"zyxqv" in bytes(block or b"") for block in blocks)  # no token of a turn stays behind


def test_a_word_with_a_double_quote_is_searched_as_a_word(memory):
    from memory import query_words

    memory.remember('She said "hello" twice.', conversation_id="c")
    with memory.engine.connect() as conn:
        assert query_words.rows_holding(conn, ['hel"lo', "hello"]) == {'hel"lo': 0, "hello": 1}
