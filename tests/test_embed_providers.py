"""Embedding through a provider: Gemini, Hugging Face (TEI) and OpenAI through their real SDKs
against loopback stand-ins of their embeddings endpoints (tests/embedding_standins.py)."""
from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from assistant.config import load_settings
from memory.errors import EmbeddingRefused
from memory.memory import Memory
from memory.turn import NewTurn
from tests.conftest import LOCOMO_MINI, MEMCHAT
from tests.embedding_standins import DIMS, KEY, LIMITS, EmbeddingStandIn

FACTS = ["My sister Anna moved to Lisbon to work as a nurse.",
         "The quarterly budget report is due on Friday.",
         "Our dog Biscuit needs his heartworm pill monthly."]
ADDRESS = {"gemini": "gemini_base_url", "openai": "openai_base_url", "hf": "hf_embed_url"}
KEYS = {"gemini": "gemini_api_key", "openai": "openai_api_key", "hf": "hf_token"}
ENV = {"gemini": ("GEMINI_API_KEY", "MEMCHAT_GEMINI_BASE_URL"), "openai": ("OPENAI_API_KEY", "MEMCHAT_OPENAI_BASE_URL"),
       "hf": ("HF_TOKEN", "MEMCHAT_HF_EMBED_URL")}


@pytest.fixture(params=["gemini", "openai", "hf"])
def kind(request, monkeypatch):
    import huggingface_hub.constants

    # huggingface_hub refuses every request under HF_HUB_OFFLINE, loopback included; nothing here
    # reaches the Hub, so the flag is lifted for these tests only.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    return request.param


@pytest.fixture
def service(kind):
    with EmbeddingStandIn(kind) as stand_in:
        yield stand_in


def embedder_for(kind: str, url: str, key: str = KEY, **more):
    settings = load_settings({"embed_provider": kind, KEYS[kind]: key, ADDRESS[kind]: url, **more}, env_file=None)
    return settings.embedder()


def files_holding(root, needle: str) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


def test_a_provider_embeds_in_batches_within_its_limits_and_recall_works(kind, service, data_dir):
    embedder = embedder_for(kind, service.url)
    with Memory(data_dir, embedder) as memory:
        filler = [NewTurn(text=f"Filler note number {n} about nothing much.") for n in range(150)]
        memory.remember_many([NewTurn(text=t) for t in FACTS] + filler)
        sizes = [len(r["body"].get("requests") or r["body"].get("input") or r["body"].get("inputs")) for r in service.requests]
        assert sum(sizes) == 153 and max(sizes) <= LIMITS[kind] and len(sizes) == -(-153 // LIMITS[kind])
        hits = memory.recall("Where does my sister Anna live?", k=3)
        assert hits[0].turn.text == FACTS[0] and "dense" in hits[0].signals
        stats = memory.stats()
        assert stats["embed_model"] == embedder.model_id and stats["embed_dim"] == DIMS[kind]
        assert stats["pending_embeddings"] == 0
    assert embedder.model_id == {"gemini": "gemini:gemini-embedding-001", "openai": "openai:text-embedding-3-small",
                                 "hf": "hf:sentence-transformers/all-MiniLM-L6-v2"}[kind]
    assert files_holding(data_dir, KEY) == []  # the key went in a header, and nowhere on disk
    if kind == "gemini":  # documents and queries are embedded as such
        assert set(service.task_types()[:153]) == {"RETRIEVAL_DOCUMENT"} and service.task_types()[-1] == "RETRIEVAL_QUERY"


def test_429_then_success_and_a_wrong_key_is_one_line(kind, service, data_dir):
    with Memory(data_dir, embedder_for(kind, service.url)) as memory:
        service.fail = [429, 503]
        memory.remember(FACTS[1])
        assert len(service.requests) == 3 and memory.stats()["turns"] == 1
    with pytest.raises(EmbeddingRefused) as refused, Memory(data_dir, embedder_for(kind, service.url, key="wrong-key-42")) as memory:
        memory.remember(FACTS[2])
    assert "401" in str(refused.value) and "wrong-key-42" not in str(refused.value)
    with Memory(data_dir, embedder_for(kind, service.url)) as memory:
        assert memory.stats()["turns"] == 1  # the refused turn was not stored


def test_offline_provider_falls_back_to_full_text_and_catches_up(kind, service, data_dir):
    with Memory(data_dir, embedder_for(kind, service.url)) as memory:
        memory.remember(FACTS[0])
        service.stop()  # the provider goes off the network
        memory.provider.retry_s = 2.0  # how long a failed provider is left alone (30 s by default)
        stored = memory.remember(FACTS[2])  # stored at once, embedded later
        notices = memory.take_notices()
        assert len(notices) == 1 and "cannot be reached" in notices[0]
        assert memory.stats()["pending_embeddings"] == 1
        hits = memory.recall("heartworm pill for the dog", k=3)
        assert hits[0].turn.id == stored.id and "dense" not in hits[0].signals  # found by its words
        assert memory.take_notices() == []  # said once per outage
        service.start()  # back, on the same address
        asked, failed_at = len(service.requests), time.monotonic()
        memory.remember("The car makes a grinding noise when braking.")  # moments later: not tried yet
        time.sleep(1.2)
        memory.remember("The boiler service is booked for March.")  # still within 2 s of the failure
        assert len(service.requests) == asked and memory.stats()["pending_embeddings"] == 3
        time.sleep(max(0.0, failed_at + 2.1 - time.monotonic()))  # skipped writes do not extend the wait
        memory.remember("The dentist moved my appointment to noon.")
        assert memory.stats()["pending_embeddings"] == 0
        hits = memory.recall("which pill does the dog need", k=3)  # the stand-in's vectors share words
        assert hits[0].turn.id == stored.id and "dense" in hits[0].signals
        assert memory.stats()["vectors"] == 5 == memory.store.count()


def test_reembed_switches_provider_resumably_through_the_cli(data_dir, cli_env, embedder):
    with Memory(data_dir, embedder) as memory:  # memories embedded locally first
        memory.remember_many([NewTurn(text=f"Note {n}: {FACTS[n % 3]}") for n in range(300)])
    with EmbeddingStandIn("openai") as service:
        env = {**cli_env, "MEMCHAT_EMBED_PROVIDER": "openai", "OPENAI_API_KEY": KEY,
               "MEMCHAT_OPENAI_BASE_URL": service.url + "/v1"}
        refused = subprocess.run([*MEMCHAT, "memory", "stats"], env=env, capture_output=True, text=True, timeout=120)
        assert refused.returncode == 1 and "memchat memory reembed" in refused.stderr
        service.fail = [200, 400]  # the first batch of 256 goes through, the second is refused: interrupted
        first = subprocess.run([*MEMCHAT, "memory", "reembed"], env=env, capture_output=True, text=True, timeout=300)
        assert first.returncode == 1 and "400" in first.stderr and KEY not in first.stderr
        assert "Traceback" not in first.stderr
        resumed = subprocess.run([*MEMCHAT, "memory", "reembed"], env=env, capture_output=True, text=True, timeout=300)
        assert resumed.returncode == 0, resumed.stderr
        assert "re-embedded 44 turns with openai:text-embedding-3-small" in resumed.stdout  # not 300 again
        again = subprocess.run([*MEMCHAT, "memory", "reembed"], env=env, capture_output=True, text=True, timeout=120)
        assert "re-embedded 0 turns" in again.stdout  # resumable: nothing left to do
        stats = subprocess.run([*MEMCHAT, "memory", "stats", "--json"], env=env, capture_output=True, text=True, timeout=120)
        stats = json.loads(stats.stdout)
        assert stats["embed_model"] == "openai:text-embedding-3-small" and stats["embed_dim"] == DIMS["openai"]
        assert stats["indexed"] == 300
    assert files_holding(data_dir, KEY) == []


def test_eval_locomo_runs_with_each_provider(kind, service, cli_env):
    key_var, url_var = ENV[kind]
    url = service.url + ("/v1" if kind == "openai" else "")
    env = {k: v for k, v in cli_env.items() if k != "HF_HUB_OFFLINE"}
    env.update({key_var: KEY, url_var: url})
    done = subprocess.run([*MEMCHAT, "eval", "locomo", str(LOCOMO_MINI), "--embed-provider", kind, "--json"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["questions"] > 0 and 0.0 < result["recall"] <= 1.0
    assert len(service.requests) > 1 and os.environ.get(key_var) != KEY


def test_the_tui_chats_on_through_an_embedding_outage(data_dir, model_cache):
    import asyncio

    from assistant.tui.app import MemchatApp
    from assistant.tui.widgets.status_bar import StatusBar
    from tests.standins import StandIn
    from tests.test_tui import SIZE, send, until

    async def go():
        with StandIn("gemini") as chat, EmbeddingStandIn("openai") as service:
            settings = load_settings({"data_dir": data_dir, "model_cache": model_cache, "backend": "gemini",
                                      "gemini_api_key": KEY, "gemini_base_url": chat.url, "embed_provider": "openai",
                                      "openai_api_key": KEY, "openai_base_url": service.url + "/v1"}, env_file=None)
            app = MemchatApp(settings)
            notes: list[str] = []
            app.notify = lambda message, **kw: notes.append(str(message))  # what the person is shown
            async with app.run_test(size=SIZE) as pilot:
                status = app.query_one(StatusBar)
                await until(pilot, lambda: app.ready)
                await send(pilot, "My bike lock code is 4412.")
                await until(pilot, lambda: not app.generating and status.memories == 2)
                app.memory.provider.retry_s = 0  # try the provider again at once (30 s by default)
                service.stop()
                await pilot.press("ctrl+n")  # a new conversation: the code can only come from recall
                await send(pilot, "What is my bike lock code?")
                await until(pilot, lambda: not app.generating and status.memories == 4, timeout=60)
                assert "4412" in json.dumps(chat.requests[-1].body)  # recalled by its words meanwhile
                assert sum("cannot be reached" in n for n in notes) == 1
                service.start()
                await send(pilot, "Thanks!")
                await until(pilot, lambda: not app.generating and status.memories == 6, timeout=60)
                await until(pilot, lambda: all(w.is_finished for w in app.workers))
                assert app.memory.stats()["pending_embeddings"] == 0
    asyncio.run(go())


def test_a_reply_waiting_for_its_vector_survives_an_outage_at_close_and_is_caught_up(monkeypatch, data_dir):
    """The chat stores its reply in the turn and embeds it after (memory/pending.py): a provider
    that is down by then moves it to the outage path; closing neither fails nor loses it."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    with EmbeddingStandIn("openai") as service:
        with Memory(data_dir, embedder_for("openai", service.url)) as memory:
            memory.remember(FACTS[0])
            reply = memory.remember(FACTS[2], "assistant", embed_later=True)
            service.stop()
        # closed during the outage: no exception, the reply stored and still waiting
        service.start()
        with Memory(data_dir, embedder_for("openai", service.url)) as memory:
            assert memory.stats()["pending_embeddings"] == 1 and reply.id not in memory.vectors([reply.id])
            memory.remember("The boiler service is booked for March.")  # the provider answers: caught up
            assert memory.stats()["pending_embeddings"] == 0 and reply.id in memory.vectors([reply.id])


def test_a_chat_message_is_embedded_as_a_document_in_its_commit_and_a_refused_key_stores_nothing(kind, service, data_dir):
    """Only the local model's query vector is a stored turn's too (the message's encode then runs
    beside its commit, tests/test_deferred_embedding.py); a provider embeds the message as before."""
    from assistant.chat import ChatService
    from assistant.soak import LoopbackBackend

    with Memory(data_dir, embedder_for(kind, service.url)) as memory:
        memory.remember(FACTS[0])
        reply = ChatService(memory, LoopbackBackend()).ask("Where did my sister Anna move to?")
        assert reply.status == "ok" and reply.user_turn_id in memory.vectors([reply.user_turn_id])
        assert reply.reply_turn_id not in memory.vectors([reply.reply_turn_id])  # the reply's comes after
        if kind == "gemini":  # the message as a document when stored, then as a query for recall
            assert service.task_types()[1:3] == ["RETRIEVAL_DOCUMENT", "RETRIEVAL_QUERY"]
    with Memory(data_dir, embedder_for(kind, service.url, key="wrong-key-42")) as memory:
        with pytest.raises(EmbeddingRefused):
            ChatService(memory, LoopbackBackend()).ask("And what does she work as?")
        assert memory.stats()["turns"] == 3  # the refused message was not stored, nor a failed reply
