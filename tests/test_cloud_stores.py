"""The hosted stores' own promises, beyond the conformance suite (tests/test_stores.py): Pinecone's
eventual consistency, retries, limits and keys; and for Pinecone and Weaviate, a chat that goes on
when the service stops mid-conversation and a store that catches up when it is back. Through the
real SDKs against the loopback stand-ins."""
from __future__ import annotations

import json
import time
import tracemalloc

import numpy as np
import pytest

from assistant.backends.gemini import GeminiBackend
from assistant.chat import ChatService
from memory import store_guard
from memory.errors import MemoryError_
from memory.memory import Memory
from memory.recall import RecallWeights
from memory.turn import NewTurn
from tests.pinecone_standin import PineconeStandIn
from tests.standins import StandIn
from tests.test_stores import service_options
from tests.weaviate_standin import WeaviateStandIn

DENSE = RecallWeights.only("dense")
SISTER = "My sister Anna moved to Lisbon to work as a nurse."
OTHERS = ["The quarterly budget report is due on Friday.", "I prefer green tea over coffee in the morning.",
          "Our dog Biscuit needs his heartworm pill monthly."]


def hosted(kind: str, **kwargs):
    return PineconeStandIn(**kwargs) if kind == "pinecone" else WeaviateStandIn(**kwargs)


def options_for(kind: str, service) -> dict:
    return service_options(kind, **{kind: service})


def test_pinecone_finds_a_turn_before_the_index_shows_it(data_dir, embedder):
    """Writes stay invisible to the service's search for 30 s here; recall finds them anyway, in
    this process and in the next one, and a forgotten turn is not served though the service still has it."""
    with PineconeStandIn(lag_s=30) as service:
        options = options_for("pinecone", service)
        with Memory(data_dir, embedder, store="pinecone", store_options=options) as memory:
            ids = [memory.remember(text).id for text in [SISTER, *OTHERS]]
            assert service.visible(memory.store.namespace) == {}  # the service shows nothing yet
            assert memory.recall("where does my sibling live", k=1, weights=DENSE)[0].turn.id == ids[0]
        with Memory(data_dir, embedder, store="pinecone", store_options=options) as memory:
            assert memory.sync_index() == "current" and memory.store.count() == 4
            assert memory.recall("where does my sibling live", k=1, weights=DENSE)[0].turn.id == ids[0]
            memory.forget([ids[0]])
            assert memory.recall("where does my sibling live", k=4, weights=DENSE)[0].turn.id != ids[0]
            assert ids[0] not in [h.turn.id for h in memory.recall("sister Anna Lisbon", k=4, weights=DENSE)]


def test_pinecone_batches_within_the_service_limits_and_retries_429(tmp_path):
    from memory.stores.pinecone import PineconeStore

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(2_500, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    with PineconeStandIn(lag_s=0) as service:
        store = PineconeStore(tmp_path, 384, "limits", api_key=service.api_key, control_url=service.url)
        store.add(np.arange(1, 2_501), vectors)  # the stand-in refuses > 1,000 vectors or > 2 MB per request
        assert sum(service.upsert_sizes) == 2_500 and max(service.upsert_sizes) <= 1_000
        store.delete(np.arange(1, 1_201))  # the stand-in refuses > 1,000 ids per delete
        service.fail_next = [429, 503]
        ids, _ = store.search(vectors[2_000], 5)
        assert ids[0] == 2_001
        assert store.count() == 1_300 and len(service.visible(store.namespace)) == 1_300
        store.close()


def test_weaviate_retries_a_busy_server(tmp_path):
    import grpc

    from memory.stores.weaviate import WeaviateStore

    vectors = np.eye(4, 8, dtype=np.float32)
    with WeaviateStandIn() as service:
        store = WeaviateStore(tmp_path, 8, "busy", url=service.url, grpc_url=service.grpc_url, api_key=service.api_key)
        store.add(np.arange(1, 5), vectors)
        service.fail_next = [grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.RESOURCE_EXHAUSTED]
        ids, scores = store.search(vectors[2], 2)
        assert ids.tolist()[0] == 3 and scores[0] == pytest.approx(1.0, abs=1e-5)
        assert service.grpc_calls[-3:] == ["Search"] * 3  # two refusals, then the answer
        store.close()


@pytest.mark.parametrize("kind", ["pinecone", "weaviate"])
def test_a_wrong_key_is_one_line_without_the_key(kind, data_dir, embedder):
    with hosted(kind) as service:
        options = options_for(kind, service)
        options[kind]["api_key"] = "sk-wrong-0123456789"
        with pytest.raises(MemoryError_) as raised:
            Memory(data_dir, embedder, store=kind, store_options=options)
    message = str(raised.value)
    assert "refused the API key" in message and "\n" not in message and "sk-wrong" not in message


@pytest.mark.parametrize("kind", ["pinecone", "weaviate"])
def test_chat_goes_on_when_the_store_stops_mid_chat(kind, data_dir, embedder):
    """The service stops between two messages: the next recall answers from SQLite's vectors, the
    person is told once, nothing is lost, and no key is written anywhere."""
    with StandIn("gemini") as model, hosted(kind) as service:
        memory = Memory(data_dir, embedder, store=kind, store_options=options_for(kind, service))
        chat = ChatService(memory, GeminiBackend("gemini-stand-in", "AIzaKey-model", model.url, 10.0), k=3)
        for text in [SISTER, *OTHERS]:
            memory.remember(text, conversation_id="facts")
        first = chat.ask("Where does my sister live?")
        assert first.warnings == [] and "Lisbon" in first.memories[0].turn.text
        service.stop()
        second = chat.ask("Remind me, which city did my sibling move to?")
        assert second.status == "ok" and "Lisbon" in " ".join(h.turn.text for h in second.memories)
        assert len(second.warnings) == 1 and kind in second.warnings[0] and "SQLite" in second.warnings[0]
        assert service.api_key not in second.warnings[0]
        third = chat.ask("And what does my dog need?")
        assert third.warnings == [] and any("Biscuit" in h.turn.text for h in third.memories)
        memory.close()
    with Memory(data_dir, embedder, store="faiss") as memory:  # SQLite kept every turn
        assert len(memory.turns()) == 4 + 6
    for path in data_dir.rglob("*"):
        if path.is_file():
            assert service.api_key.encode() not in path.read_bytes(), path.name


def test_pinecone_catches_up_after_an_outage(data_dir, embedder):
    with PineconeStandIn(lag_s=0) as service:
        options = options_for("pinecone", service)
        with Memory(data_dir, embedder, store="pinecone", store_options=options) as memory:
            namespace = memory.store.namespace
            memory.remember(OTHERS[0])
            service.outage = True
            missed = memory.remember(SISTER)  # stored in SQLite; the store misses it
            assert "pinecone" in memory.take_notices()[0]
        assert len(service.visible(namespace)) == 1
        with Memory(data_dir, embedder, store="pinecone", store_options=options) as memory:  # opens though down
            assert "pinecone" in memory.take_notices()[0]
            assert memory.recall("where does my sibling live", k=1, weights=DENSE)[0].turn.id == missed.id
            memory.remember(OTHERS[1])  # missed too
        service.outage = False
        with Memory(data_dir, embedder, store="pinecone", store_options=options) as memory:
            assert memory.store.count() == 3 and len(service.visible(namespace)) == 3
            assert memory.recall("where does my sibling live", k=1, weights=DENSE)[0].turn.id == missed.id


def test_the_cli_on_pinecone_notes_an_outage_and_doctor_hides_the_key(data_dir, monkeypatch, capsys):
    from assistant.cli import main

    with PineconeStandIn(lag_s=0) as service:
        monkeypatch.setenv("PINECONE_API_KEY", service.api_key)
        monkeypatch.setenv("MEMCHAT_PINECONE_CONTROL_URL", service.url)
        args = ["--data-dir", str(data_dir), "--store", "pinecone"]
        assert main(["memory", "add", "My bike lock code is 2291.", *args]) == 0
        service.outage = True
        assert main(["memory", "add", SISTER, *args]) == 0  # stored in SQLite all the same
        err = capsys.readouterr().err
        assert "memchat: note: pinecone failed" in err and service.api_key not in err
        service.outage = False
        assert main(["memory", "search", "where does my sibling live", "--json", *args]) == 0
        assert "Lisbon" in json.loads(capsys.readouterr().out)[0]["text"]
        assert main(["memory", "stats", "--json", *args]) == 0
        assert json.loads(capsys.readouterr().out)["indexed"] == 2
        assert main(["doctor", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert "pinecone.api_key = set (hidden)" in " ".join(out.split()) and service.api_key not in out
    assert "MEMCHAT_PINECONE_CONTROL_URL" in out


def vector_ids_of(memory: Memory, turn_id: int) -> list[str]:
    with memory.engine.connect() as conn:
        return [str(i) for i in conn.exec_driver_sql("SELECT id FROM embeddings WHERE turn_id = ?", (turn_id,)).scalars()]


def test_a_forget_during_an_outage_leaves_the_service_when_it_is_back(data_dir, embedder, monkeypatch):
    """Without reopening: the next recall after the wait sends the delete first, and the stamp
    saved then leaves the next open nothing to rebuild."""
    monkeypatch.setattr(store_guard, "RETRY_AFTER_S", 0.5)  # the wait between tries, not the behaviour
    with PineconeStandIn(lag_s=0) as service:
        options = options_for("pinecone", service)
        with Memory(data_dir, embedder, store="pinecone", store_options=options) as memory:
            namespace = memory.store.namespace
            sister, *_ = [memory.remember(text) for text in [SISTER, *OTHERS]]
            forgotten = vector_ids_of(memory, sister.id)
            service.outage = True
            memory.forget([sister.id])
            assert set(forgotten) <= set(service.visible(namespace))  # the delete did not reach it
            service.outage = False
            time.sleep(0.6)
            assert sister.id not in [h.turn.id for h in memory.recall("sister Anna Lisbon", k=4, weights=DENSE)]
            assert not set(forgotten) & set(service.visible(namespace))  # gone, this process still open
            assert len(service.visible(namespace)) == 3
        with Memory(data_dir, embedder, store="pinecone", store_options=options) as memory:
            assert memory.sync_index() == "current"


def test_a_delete_still_missing_is_sent_at_close(data_dir, embedder):
    with PineconeStandIn(lag_s=0) as service:
        options = options_for("pinecone", service)
        memory = Memory(data_dir, embedder, store="pinecone", store_options=options)
        namespace = memory.store.namespace
        sister = memory.remember(SISTER)
        memory.remember(OTHERS[0])
        forgotten = vector_ids_of(memory, sister.id)
        service.outage = True
        memory.forget([sister.id])
        service.outage = False  # back within the 30 s the guard waits before trying again
        memory.close()
        assert not set(forgotten) & set(service.visible(namespace)) and len(service.visible(namespace)) == 1
        with Memory(data_dir, embedder, store="pinecone", store_options=options) as reopened:
            assert reopened.sync_index() == "current"


def test_the_exact_fallback_reads_the_vectors_in_batches(data_dir, embedder):
    """Equal to a full exact search at any batch size, and never holding every vector at once."""
    n, dim = 3_000, 384
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    with Memory(data_dir, embedder) as memory:
        memory.remember_many((NewTurn(text=f"note {i}") for i in range(n)), vectors=vectors)
        with memory.engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT id, vector FROM embeddings").all()
        ids = np.array([r[0] for r in rows])
        matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)
        guard = memory.index.guard
        for query in (vectors[17], rng.normal(size=dim).astype(np.float32)):
            scores = matrix @ query
            for k, batch in ((10, 64), (1, 1000), (50, 4096), (n + 5, 333)):
                top = np.argsort(-scores)[:k]
                got_ids, got_scores = guard.exact_search(query, k, batch=batch)
                assert got_ids.tolist() == ids[top].tolist()
                assert np.allclose(got_scores, scores[top], atol=1e-6)
        assert len(guard.exact_search(vectors[0], 0)[0]) == 0
        tracemalloc.start()
        guard.exact_search(vectors[17], 10, batch=128)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < matrix.nbytes / 4, peak  # loading them all held the rows and the matrix: 2x
