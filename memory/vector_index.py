"""The vector index as one process holds it: opened from the store registry, kept in line with
SQLite (which always wins) while other processes write and forget, and saved.

Every method here expects the caller (memory/memory.py) to hold the data dir's lock: shared for
`refresh` before a search, exclusive for everything that changes the index.

Several processes may share a data dir. An index this process holds a copy of (FAISS), or the only
handle to (Qdrant's local mode, Milvus Lite), does not see what the others wrote or forgot, so
before it is searched or changed `refresh` takes that in: one cheap look at SQLite (deletion
generation, highest vector id); new ids are added from SQL; a new generation means another
process forgot something, so the index that process saved is reloaded and caught up from (a
rebuild only when there is no such file). A store behind a server (`shared = True`) already holds
every process's vectors and needs none of this.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
from sqlalchemy.engine import Engine

from memory import indexing, store_identity
from memory.errors import ModelMismatch
from memory.record import get_meta, set_meta
from memory.store_guard import StoreGuard, Unreachable
from memory.stores import STORES, IndexState, StoreRefused, StoreUnavailable, open_store

Progress = Callable[[str, int, int], None]
SAVE_EVERY = 1000  # unsaved index additions before the index file is rewritten
# A store that rewrites its whole file to save (FAISS) lets its file lag SQLite: at a million
# memories every `memchat ask` would otherwise write ~1.5 GB at exit. While adding, it is rewritten
# once the lag reaches LAG_SHARE of its size (a long import writes ~10x the final file, not one
# file per thousand turns); at open, after an import and at close, once it reaches LAG_CAP, so the
# next open catches up at most that many vectors from SQLite (a fraction of a second). SQLite holds
# every vector, so a crash loses nothing either.
LAG_SHARE, LAG_CAP = 0.1, 20_000


def _no_progress(phase: str, done: int, total: int) -> None:
    pass


class VectorIndex:
    def __init__(self, engine: Engine, data_dir: Path, name: str, options: dict, model_id: str,
                 notice: Callable[[str], None], progress: Progress = _no_progress, sync_now: bool = True):
        """`sync_now=False`: open without catching up (a re-embed, which rebuilds at its end: an
        interrupted one leaves vectors of two models, perhaps of two sizes, in SQLite)."""
        self.engine, self.data_dir, self.options, self.model_id = engine, data_dir, options, model_id
        self.notice = notice
        self.name = name
        self.store = self._open(name, fallback=True)
        self.guard = StoreGuard(self.store, engine, notice)
        self.unsaved = 0
        self.reflects: IndexState | None = None  # the SQL state this process's index holds
        if not sync_now:
            return
        try:
            self.sync(progress)
        except StoreRefused:
            raise
        except StoreUnavailable as exc:
            self.guard.mark_down(exc)

    def _open(self, name: str, fallback: bool):
        options = self.options.get(name, {})
        outside = name in STORES and STORES[name].outside(options)  # an unknown name fails in open_store
        with self.engine.begin() as conn:
            dim = get_meta(conn, "embed_dim")
            store_id = store_identity.store_id(conn, self.data_dir, name, outside, self.notice)
        dim = int(dim) if dim else None
        try:
            return open_store(name, self.data_dir, dim, store_id, **options)
        except StoreRefused:
            raise  # a wrong key is a setting to fix: say so now
        except StoreUnavailable as exc:
            if not fallback:
                raise
            # An outage, or an embedded store another process has open: SQLite has everything.
            return Unreachable(name, dim, str(exc))

    def sync(self, progress: Progress = _no_progress, force: bool = False) -> str:
        """Nothing, catch up, or rebuild from SQL (exclusive lock held). Returns which."""
        # What this process's copy holds, where it is its own copy (a server's store holds others' too).
        have = None if self.store.shared else self.reflects
        outcome = indexing.sync(self.engine, self.store, progress, force, have=have, save=False)
        self.guard.behind = False  # whatever a failed write missed, the store now holds
        with self.engine.connect() as conn:
            self.reflects = indexing.sql_state(conn)
        if outcome == "rebuilt" or (outcome == "caught up" and (not self._defers_saves or self._save_due(settled=True))):
            self.save()
        return outcome

    def refresh(self) -> None:
        """Take in what other processes wrote or forgot since this one last looked."""
        if self.store.shared or self.reflects is None:
            return
        with self.engine.connect() as conn:
            generation, max_id = indexing.changed_since(conn)
        if (generation, max_id) == (self.reflects.generation, self.reflects.max_id):
            return
        have = self.reflects
        if generation != have.generation:  # something was forgotten or replaced elsewhere
            with self.engine.connect() as conn:
                model = get_meta(conn, "embed_model")
            if model and model != self.model_id:
                raise ModelMismatch(f"another memchat re-embedded this memory with {model}; restart this one "
                                    f"with MEMCHAT_EMBED_MODEL={model}")
            have = self.store.reload()  # the index that process saved, or None: a rebuild
        indexing.sync(self.engine, self.store, _no_progress, have=have, save=False)
        with self.engine.connect() as conn:
            self.reflects = indexing.sql_state(conn)

    def added(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Vectors this process just committed (refreshed before the commit, lock still held)."""
        self.guard.add(ids, vectors)
        if self.reflects is not None:
            self.reflects = IndexState(self.reflects.generation, max(self.reflects.max_id, int(ids.max())),
                                       self.reflects.count + len(ids))
        self.unsaved += len(ids)
        if self._save_due():
            self.save()

    def forgotten(self, ids: np.ndarray) -> None:
        """Vectors of turns this process just deleted in SQL (refreshed before, lock still held):
        out of the index, and the file rewritten now, so they are gone from disk too."""
        self.guard.delete(ids)
        # The delete bumped the generation: record it as this index's own, or the save below would
        # take it for another process's forget and reload the old file and rebuild (minutes at 1M).
        with self.engine.connect() as conn:
            self.reflects = indexing.sql_state(conn)
        self.save()

    @property
    def _defers_saves(self) -> bool:
        return self.store.rewrites_on_save

    def _save_due(self, settled: bool = False) -> bool:
        """settled: at open, after an import or at close, where the lag left is what the next open
        catches up."""
        if not self._defers_saves:
            return self.unsaved >= SAVE_EVERY
        saved, now = self.store.state(), self.reflects
        if saved is None or now is None or saved.generation != now.generation:
            return True
        allowed = int(now.count * LAG_SHARE)
        return now.count - saved.count >= max(SAVE_EVERY, min(allowed, LAG_CAP) if settled else allowed)

    def save(self) -> None:
        """Write the index as SQL has it now: what this process added and what others did."""
        self.refresh()
        with self.engine.connect() as conn:
            truth = indexing.sql_state(conn)
        try:
            self.guard.save(truth)
        except OSError as exc:  # SQLite holds every turn; only the derived file is missing
            self.notice(f"the vector index could not be saved ({exc.strerror}); it is rebuilt from SQLite "
                        "on the next open")
        self.reflects = truth
        self.unsaved = 0

    def move_to(self, target: str, progress: Progress = _no_progress) -> int:
        """Make `target` the data dir's store: copy the vectors from SQLite (no re-embedding)."""
        new_store = self._open(target, fallback=False)
        old_store, self.store = self.store, new_store
        try:
            self.sync(progress, force=True)
        except BaseException:
            self.store = old_store
            new_store.close()
            raise
        self.guard.close()  # deletes the old store missed go out first
        old_store.close()
        self.guard = StoreGuard(new_store, self.engine, self.notice)
        self.name = target
        with self.engine.begin() as conn:
            set_meta(conn, "vector_store", target)
        return self.store.count()

    def settle(self) -> None:
        """At the end of an import and at close: save if the file lacks more than the next open
        should have to catch up (for FAISS, LAG_CAP; for the others, anything)."""
        if self._save_due(settled=True) if self._defers_saves else self.unsaved:
            self.save()

    def close(self) -> None:
        self.settle()
        self.guard.close()
        self.store.close()
