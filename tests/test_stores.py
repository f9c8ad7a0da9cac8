"""One conformance suite for every registered vector store, through the same Memory facade: FAISS,
PostgreSQL+pgvector (an embedded server the fixture starts), Milvus Lite, Qdrant's local mode, and
Pinecone and Weaviate through their real SDKs against loopback stand-ins (tests/*_standin.py)."""
from __future__ import annotations

import threading

import pytest

from memory.errors import MemoryError_
from memory.memory import Memory
from memory.recall import RecallFilter, RecallWeights
from memory.stores import STORES
from memory.turn import NewTurn
from tests.pinecone_standin import PineconeStandIn
from tests.weaviate_standin import WeaviateStandIn

DENSE = RecallWeights.only("dense")
FACTS = [
    ("My sister Anna moved to Lisbon to work as a nurse.", "family"),
    ("The quarterly budget report is due on Friday.", "work"),
    ("I prefer green tea over coffee in the morning.", "habits"),
    ("Our dog Biscuit needs his heartworm pill monthly.", "family"),
    ("The car makes a grinding noise when braking.", "errands"),
]


def service_options(store: str, pinecone: PineconeStandIn | None = None, weaviate: WeaviateStandIn | None = None) -> dict:
    """Memory's store_options pointing the hosted stores at their stand-ins."""
    options = {}
    if pinecone is not None:
        options["pinecone"] = {"api_key": pinecone.api_key, "control_url": pinecone.url}
    if weaviate is not None:
        options["weaviate"] = {"url": weaviate.url, "grpc_url": weaviate.grpc_url, "api_key": weaviate.api_key}
    return options


@pytest.fixture(params=list(STORES))
def store_name(request) -> str:
    return request.param


@pytest.fixture
def store_options(request, store_name) -> dict:
    """Each store's settings; the hosted ones get a stand-in (started only when their case runs)."""
    if store_name == "pinecone":
        return service_options(store_name, pinecone=request.getfixturevalue("pinecone_service"))
    if store_name == "weaviate":
        return service_options(store_name, weaviate=request.getfixturevalue("weaviate_service"))
    return {}


@pytest.fixture
def filled(data_dir, embedder, store_name, store_options):
    memory = Memory(data_dir, embedder, store=store_name, store_options=store_options)
    ids = [memory.remember(text, conversation_id=cid, created_at=1_000 + i).id for i, (text, cid) in enumerate(FACTS)]
    yield memory, ids
    memory.close()


def test_search_ranks_the_paraphrased_fact_first(filled):
    memory, ids = filled
    assert memory.store.name == memory.store_name
    assert memory.recall("where does my sibling live", k=3, weights=DENSE)[0].turn.id == ids[0]
    assert memory.recall("what medicine does the pet take", k=3, weights=DENSE)[0].turn.id == ids[3]
    scores = [h.similarity for h in memory.recall("tea or coffee", k=5, weights=DENSE)]
    assert scores == sorted(scores, reverse=True)


def test_filters(filled):
    memory, ids = filled
    hits = memory.recall("family news", k=5, flt=RecallFilter(conversation_id="family"), weights=DENSE)
    assert {h.turn.id for h in hits} == {ids[0], ids[3]}
    hits = memory.recall("anything", k=5, flt=RecallFilter(since=1_002, until=1_004), weights=DENSE)
    assert {h.turn.id for h in hits} == {ids[2], ids[3]}


def test_forget_and_count(filled):
    memory, ids = filled
    assert memory.store.count() == 5
    memory.forget([ids[0]])
    assert memory.store.count() == 4
    assert ids[0] not in [h.turn.id for h in memory.recall("sister Lisbon", k=5, weights=DENSE)]
    memory.forget_conversation("family")
    assert memory.store.count() == 3


def test_persists_across_reopen_and_rebuilds_from_sql(data_dir, embedder, store_name, store_options, filled):
    memory, ids = filled
    memory.close()
    with Memory(data_dir, embedder, store=store_name, store_options=store_options) as reopened:
        assert reopened.sync_index() == "current" and reopened.store.count() == 5
        reopened.store.reset(reopened.store.dim)  # lose the index entirely
        assert reopened.store.count() == 0
        assert reopened.sync_index(force=True) == "rebuilt"
        assert reopened.store.count() == 5
        assert reopened.recall("where does my sibling live", k=1, weights=DENSE)[0].turn.id == ids[0]


def test_concurrent_readers(filled):
    memory, ids = filled
    questions = {"where does my sibling live": ids[0], "what medicine does the pet take": ids[3],
                 "is something wrong with the vehicle": ids[4]}
    for question in questions:
        memory.embedder.encode_query(question)  # embed once up front: the threads then only search
    errors, results = [], []

    def reader(question: str, expected: int) -> None:
        try:
            for _ in range(5):
                results.append(memory.recall(question, k=1, weights=DENSE)[0].turn.id == expected)
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=reader, args=item) for item in questions.items() for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(results) == 30 and all(results)


def test_migrate_copies_vectors_without_reembedding(data_dir, embedder, store_name, store_options):
    with Memory(data_dir, embedder, store_options=store_options) as memory:  # starts on FAISS
        ids = [memory.remember(text, conversation_id=cid).id for text, cid in FACTS][:1]
        with memory.engine.connect() as conn:
            before = conn.exec_driver_sql("SELECT id, vector FROM embeddings ORDER BY id").all()
        assert memory.migrate_store(store_name) == 5
        with memory.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT id, vector FROM embeddings ORDER BY id").all() == before
    with Memory(data_dir, embedder, store_options=store_options) as memory:  # the data dir now opens on the new store
        assert memory.store_name == store_name and memory.store.count() == 5
        assert "Lisbon" in memory.recall("where does my sibling live", k=1, weights=DENSE)[0].turn.text
        memory.forget(ids)  # forgetting on the new store, then back to FAISS: nothing else lost
        assert memory.migrate_store("faiss") == 4
    with Memory(data_dir, embedder) as memory:
        assert memory.store_name == "faiss" and memory.store.count() == 4 and len(memory.turns()) == 4
        assert "Lisbon" not in " ".join(t.text for t in memory.turns())


def test_unreachable_servers_give_a_clear_error(data_dir, embedder, tmp_path):
    with pytest.raises(MemoryError_, match="cannot use PostgreSQL"):
        Memory(data_dir, embedder, store="pgvector",
               store_options={"pgvector": {"url": f"postgresql://postgres@/postgres?host={tmp_path}"}})
    with pytest.raises(MemoryError_, match="cannot open Milvus|Milvus"):
        Memory(tmp_path / "other", embedder, store="milvus",
               store_options={"milvus": {"uri": "http://127.0.0.1:9", "token": ""}})


# -- the registry: one table, read by everything that offers a choice of store -------------------
def test_no_other_list_of_store_names_exists():
    """A literal naming two or more stores anywhere but the registry is a second list to keep in step."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    offenders = []
    for path in [*root.glob("assistant/**/*.py"), *root.glob("memory/**/*.py")]:
        if path == root / "memory" / "stores" / "__init__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.List, ast.Tuple, ast.Set, ast.Dict)):
                items = node.keys if isinstance(node, ast.Dict) else node.elts
                named = {n.value for n in items if isinstance(n, ast.Constant) and n.value in STORES}
                if len(named) >= 2:
                    offenders.append(f"{path.relative_to(root)}:{node.lineno} {sorted(named)}")
    assert not offenders, offenders


def test_a_new_store_is_one_module_and_one_entry(monkeypatch, data_dir, embedder, capsys):
    """Register a store under a new name (FAISS's module stands in for a new one): the CLI, doctor,
    the settings modal's choices, bench and migrate offer it, and Memory opens it; nothing else edited."""
    from assistant.cli import build_parser
    from assistant.config import load_settings
    from assistant.doctor import store_readiness
    from assistant.measure import _bench_stores
    from memory import stores

    spec = stores.StoreSpec("faiss-copy", "memory.stores.faiss", "FaissStore", "a registered copy of faiss")
    monkeypatch.setitem(stores.STORES, spec.name, spec)
    parser = build_parser()
    assert parser.parse_args(["memory", "migrate", "--to", "faiss-copy"]).to == "faiss-copy"
    assert parser.parse_args(["chat", "--store", "faiss-copy"]).store == "faiss-copy"
    assert "faiss-copy" in store_readiness(load_settings(env_file=None))
    assert _bench_stores("faiss,faiss-copy", {}) == ["faiss", "faiss-copy"]
    with Memory(data_dir, embedder) as memory:
        memory.remember(FACTS[0][0])
        assert memory.migrate_store("faiss-copy") == 1
    with Memory(data_dir, embedder) as memory:
        assert memory.store_name == "faiss-copy" and memory.store.count() == 1


def test_hosted_stores_join_the_bench_only_when_configured(capsys):
    from assistant.measure import _bench_stores

    assert _bench_stores("faiss,pinecone,weaviate", {}) == ["faiss"]
    assert "set PINECONE_API_KEY" in capsys.readouterr().err
    assert _bench_stores("pinecone", {"pinecone": {"api_key": "k"}}) == ["pinecone"]
    with pytest.raises(MemoryError_, match="unknown vector store 'chroma'"):
        _bench_stores("chroma", {})


def test_pgvector_vacuums_after_a_forget_not_on_every_save(data_dir, embedder):
    """Found by reading the code (#12): every save ran VACUUM, so every `ask` or `add` vacuumed."""
    from sqlalchemy import event

    with Memory(data_dir, embedder, store="pgvector") as memory:
        vacuums = []
        event.listen(memory.store.engine, "before_cursor_execute",
                     lambda conn, cursor, statement, *rest: vacuums.append(statement)
                     if statement.startswith("VACUUM") else None)
        ids = [memory.remember(text, conversation_id=cid).id for text, cid in FACTS[:4]]
        memory.remember_many([NewTurn(text=FACTS[4][0], conversation_id=FACTS[4][1])])  # its end saves the index
        assert memory.store.state().count == 5 and vacuums == []
        memory.forget(ids[:1])
        assert len(vacuums) == 1


def test_a_second_process_shares_the_memory(filled, data_dir, embedder, store_name, store_options):
    """Two Memory objects on one data dir exclude each other as two processes do (one flock each).
    Qdrant's local mode allows one client, so the second searches SQLite exactly (Milvus Lite
    allows one process but shares its handle within one: tests/test_cli_memory.py has two
    processes); either way each sees the other's writes and forgets."""
    first, ids = filled
    second = Memory(data_dir, embedder, store=store_name, store_options=store_options)
    try:
        busy = second.store.index_kind == "unreachable"
        assert busy == (store_name == "qdrant")
        assert second.recall("where does my sibling live", k=1, weights=DENSE)[0].turn.id == ids[0]
        added = second.remember("Grandpa's birthday party is on the third of March.", conversation_id="family").id
        assert first.recall("when is grandfather's birthday", k=1, weights=DENSE)[0].turn.id == added
        second.forget([ids[0]])
        assert ids[0] not in [h.turn.id for h in first.recall("sister Lisbon", k=5, weights=DENSE)]
        stats = first.stats()
        assert stats["indexed"] == stats["vectors"] == stats["turns"] == 5
        assert bool(second.take_notices()) == busy  # the second is told why it searches exactly
    finally:
        second.close()
    first.close()
    with Memory(data_dir, embedder, store=store_name, store_options=store_options) as reopened:
        assert reopened.sync_index() == "current" and reopened.store.count() == 5
