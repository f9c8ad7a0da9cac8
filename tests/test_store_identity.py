"""A copied data dir gets server storage of its own (memory/store_identity.py): the copy and the
original each recall their own turns, through the real SDKs against the loopback stand-ins."""
from __future__ import annotations

import shutil
import uuid

import numpy as np
import pytest

from memory.memory import Memory
from memory.recall import RecallWeights
from tests.pinecone_standin import PineconeStandIn
from tests.test_stores import FACTS, service_options
from tests.weaviate_standin import WeaviateStandIn

DENSE = RecallWeights.only("dense")
ORIGINAL_NEW = ["The plumber comes on Tuesday at nine.", "I lent my ladder to the neighbour Tom."]
COPY_NEW = ["My passport expires in August.", "The wifi password is taped under the router.",
            "Grandma's recipe needs two cups of rye flour."]


def hosted(kind: str):
    return PineconeStandIn(lag_s=0) if kind == "pinecone" else WeaviateStandIn()


def options_for(kind: str, service) -> dict:
    return service_options(kind, **{kind: service})


def held_by_the_service(service, memory: Memory) -> dict[int, np.ndarray]:
    """What the stand-in holds under this memory's name: embedding id -> vector."""
    if isinstance(service, PineconeStandIn):
        return {int(i): np.array(v, dtype=np.float32) for i, (v, _) in service.visible(memory.store.namespace).items()}
    objects = service.collections[memory.store.collection_name]["objects"]
    return {uuid.UUID(key).int: np.array(v, dtype=np.float32) for key, (v, _, _) in objects.items()}


def holds_only_its_own(service, memory: Memory, own: list[str]) -> None:
    """The service holds exactly this memory's vectors under its name, and each of its new turns is
    recalled by its own words with the similarity of its own vector."""
    with memory.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT id, vector FROM embeddings").all()
    held = held_by_the_service(service, memory)
    assert sorted(held) == sorted(i for i, _ in rows)
    for i, vector in rows:
        assert np.allclose(held[i], np.frombuffer(vector, dtype=np.float32), atol=1e-6), i
    for text in own:
        hit = memory.recall(text, k=1, weights=DENSE)[0]
        assert hit.turn.text == text and hit.similarity == pytest.approx(1.0, abs=1e-3), (text, hit)


@pytest.mark.parametrize("kind", ["pinecone", "weaviate"])
def test_a_copied_data_dir_gets_server_storage_of_its_own(kind, tmp_path, embedder):
    original, copy = tmp_path / "original", tmp_path / "copy"
    with hosted(kind) as service:
        options = options_for(kind, service)
        with Memory(original, embedder, store=kind, store_options=options) as memory:
            for text, cid in FACTS:
                memory.remember(text, conversation_id=cid)
        shutil.copytree(original, copy)
        with Memory(original, embedder, store=kind, store_options=options) as first, \
                Memory(copy, embedder, store=kind, store_options=options) as second:
            assert first.take_notices() == []
            told = second.take_notices()
            assert len(told) == 1 and f"a copy of {original}" in told[0] and "untouched" in told[0]
            for text in ORIGINAL_NEW:
                first.remember(text)
            for text in COPY_NEW:
                second.remember(text)
            holds_only_its_own(service, first, ORIGINAL_NEW)
            holds_only_its_own(service, second, COPY_NEW)
        for path in (original, copy):  # the copy is a memory of its own now: nothing to redo, nothing said
            with Memory(path, embedder, store=kind, store_options=options) as memory:
                assert memory.sync_index() == "current" and memory.take_notices() == []


def test_a_moved_data_dir_keeps_its_server_storage(tmp_path, embedder):
    with PineconeStandIn(lag_s=0) as service:
        options = options_for("pinecone", service)
        with Memory(tmp_path / "here", embedder, store="pinecone", store_options=options) as memory:
            memory.remember(FACTS[0][0])
            namespace = memory.store.namespace
        (tmp_path / "here").rename(tmp_path / "there")
        with Memory(tmp_path / "there", embedder, store="pinecone", store_options=options) as memory:
            assert memory.store.namespace == namespace and memory.take_notices() == []
            assert memory.sync_index() == "current"


def test_a_copy_on_a_local_store_keeps_its_id_until_it_moves_to_a_server(tmp_path, embedder):
    """FAISS's file was copied with the data dir: nothing to rebuild. Both then move to Pinecone:
    the copy, not the original, gets a namespace of its own, holding its own vectors."""
    original, copy = tmp_path / "original", tmp_path / "copy"
    with Memory(original, embedder) as memory:
        for text, cid in FACTS:
            memory.remember(text, conversation_id=cid)
    shutil.copytree(original, copy)
    with PineconeStandIn(lag_s=0) as service:
        options = options_for("pinecone", service)
        with Memory(original, embedder, store_options=options) as first, \
                Memory(copy, embedder, store_options=options) as second:
            assert second.sync_index() == "current" and second.take_notices() == []
            first.remember(ORIGINAL_NEW[0])
            second.remember(COPY_NEW[0])
            first.migrate_store("pinecone")
            second.migrate_store("pinecone")
            assert first.take_notices() == [] and "a copy of" in second.take_notices()[0]
            holds_only_its_own(service, first, ORIGINAL_NEW[:1])
            holds_only_its_own(service, second, COPY_NEW[:1])
