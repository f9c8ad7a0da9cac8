"""A chat reply is committed before its turn returns and embedded just after (#26): what the
person waits for holds one embedding, not two, and nothing is lost in between: a crash leaves a
turn the next open embeds, a forget in between leaves nothing listed."""
from __future__ import annotations

import sqlite3
import subprocess
import sys

from assistant.chat import ChatService
from assistant.soak import LoopbackBackend
from memory import pending
from memory.memory import Memory
from memory.profiles import DB_NAME
from memory.writing import commit_vectors, embed_chunks
from tests.conftest import REPO


def _listed(memory) -> list[int]:
    with memory.engine.connect() as conn:
        return pending.deferred(conn)


def test_the_reply_is_stored_when_the_turn_returns_and_embedded_after(memory):
    service = ChatService(memory, LoopbackBackend())
    reply = service.ask("My sister Ines moved to Porto in March.")
    assert memory.get(reply.reply_turn_id).text.startswith("Noted:")  # committed before the turn returned
    assert reply.reply_turn_id not in memory.vectors([reply.reply_turn_id])  # its vector comes after
    assert reply.user_turn_id in memory.vectors([reply.user_turn_id])  # the message's does not wait
    assert _listed(memory) == [reply.reply_turn_id] and memory.stats()["pending_embeddings"] == 1

    assert memory.embed_deferred() == 1
    assert reply.reply_turn_id in memory.vectors([reply.reply_turn_id])
    stats = memory.stats()
    assert _listed(memory) == [] and stats["pending_embeddings"] == 0 and stats["indexed"] == stats["vectors"] == 2
    assert memory.embed_deferred() == 0  # nothing twice
    found = {hit.turn.id: hit for hit in memory.recall(memory.get(reply.reply_turn_id).text, k=2)}
    assert "dense" in found[reply.reply_turn_id].signals  # found by its vector, not only by its words


def test_close_embeds_what_waits(data_dir, embedder):
    with Memory(data_dir, embedder) as memory:
        turn = memory.remember("a reply printed before its vector was made", "assistant", embed_later=True)
    with sqlite3.connect(data_dir / DB_NAME) as db:
        assert db.execute("SELECT count(*) FROM embeddings WHERE turn_id = ?", (turn.id,)).fetchone()[0] == 1
        assert db.execute("SELECT value FROM meta WHERE key = ?", (pending.DEFERRED,)).fetchone()[0] == "[]"


def test_a_crash_between_the_commit_and_the_embedding_leaves_a_turn_the_next_open_embeds(data_dir, embedder, model_cache):
    crash = (f"import os; from memory.embedding import Embedder; from memory.memory import Memory\n"
             f"m = Memory({str(data_dir)!r}, Embedder(cache_dir={str(model_cache)!r}))\n"
             f"t = m.remember('the reply of a turn that crashed', 'assistant', embed_later=True)\n"
             f"print(t.id, flush=True); os._exit(9)")  # no close, no embedding: as kill -9 would leave it
    done = subprocess.run([sys.executable, "-c", crash], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 9, done.stderr
    turn_id = int(done.stdout.split()[0])
    with sqlite3.connect(data_dir / DB_NAME) as db:  # committed, not embedded
        assert db.execute("SELECT count(*) FROM turns WHERE id = ?", (turn_id,)).fetchone()[0] == 1
        assert db.execute("SELECT count(*) FROM embeddings WHERE turn_id = ?", (turn_id,)).fetchone()[0] == 0
    with Memory(data_dir, embedder) as memory:
        assert turn_id in memory.vectors([turn_id]) and _listed(memory) == []
        assert memory.recall("the reply of a turn that crashed", k=1)[0].turn.id == turn_id


def test_a_reply_forgotten_before_its_embedding_leaves_nothing_listed_or_stored(memory):
    turn = memory.remember("forget me before my vector exists", "assistant", embed_later=True)
    memory.forget([turn.id])
    assert memory.embed_deferred() == 0 and _listed(memory) == []
    assert memory.stats()["vectors"] == 0


def test_a_vector_for_a_turn_forgotten_meanwhile_is_not_stored(memory):
    """Embedding happens without the lock: another process may forget the turn before the commit."""
    turn = memory.remember("gone before its vector was stored", "assistant", embed_later=True)
    chunks, vectors = embed_chunks(memory.embedder, [turn.text])
    memory.forget([turn.id])
    ids, kept = commit_vectors(memory.engine, memory.embedder.model_id, [turn.id], chunks, vectors, replace=False)
    assert len(ids) == 0 and len(kept) == 0 and memory.stats()["vectors"] == 0
