"""FAISS vector store: exact search while small, IVF past a size where exact gets slow.

Exact: IndexIDMap2 over IndexFlatIP (inner product on unit vectors == cosine), stable int64 ids.
Approximate: IndexIVFScalarQuantizer, inner product over 8-bit codes of the raw vectors (a
quarter of float32's bytes: at a million memories ~0.4 GB held instead of ~1.5 GB). Its scores
are close, not exact (`approximate`), so recall re-scores its candidates from SQLite's float32
copy (memory/recall.py). It keeps stable ids and supports remove_ids, so forgetting never needs
a rebuild (HNSW cannot delete). An IVFFlat index of an earlier release is compressed at its next
save. `memchat bench` measured where exact search
stops meeting the latency target on the 2-core machine; see docs/benchmarks.md.

On disk the index is one file: a JSON header (the IndexState it reflects, the index kind) then the
serialized index, written to a temp file and renamed, so a crash leaves the old file or the new
one, never half of one. A file that cannot be read is treated as missing and rebuilt from SQL.
"""
from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path

import numpy as np

from memory.runtime.private_files import make_private
from memory.stores.base import IndexState, VectorStore

MAGIC = b"MEMCHATIDX1"
FILE_NAME = "index.faiss"
# Past this many vectors `auto` switches to IVF (measured; see docs/benchmarks.md).
EXACT_LIMIT = 20_000
# One query at a time: a second OpenMP team (FAISS's) competes with torch's for the 2 cores, and each
# team spins briefly after every parallel region (libgomp's default) before it sleeps.
SEARCH_THREADS = 1


class FaissStore(VectorStore):
    name = "faiss"
    shared = False  # each process holds its own copy of the index, loaded from the file
    rewrites_on_save = True  # a save writes the whole file: memory/vector_index.py defers it

    def __init__(self, data_dir: Path, dim: int | None, store_id: str = "", kind: str = "auto",
                 nprobe: int | None = None):
        # store_id is unused: the file lives in this store's own data dir.
        if kind not in ("auto", "flat", "ivf"):
            raise ValueError(f"unknown FAISS index kind {kind!r} (auto, flat or ivf)")
        self.path = Path(data_dir) / FILE_NAME
        self.kind = kind
        self.nprobe = nprobe
        self.dim = dim
        self._state: IndexState | None = None
        self.index = None
        self._load()
        if self.index is None and dim is not None:
            self.reset(dim)

    # -- persistence ---------------------------------------------------------------------------
    def _load(self) -> None:
        import faiss

        try:
            with open(self.path, "rb") as f:
                if f.read(len(MAGIC)) != MAGIC:
                    return
                (header_len,) = struct.unpack("<I", f.read(4))
                header = json.loads(f.read(header_len))
                # Streamed from the file: no second copy of a large index in memory while it loads.
                index = faiss.read_index(faiss.PyCallbackIOReader(f.read))
        except (OSError, ValueError, RuntimeError, struct.error, json.JSONDecodeError):
            return  # missing or corrupt: the caller rebuilds from SQL
        if index.ntotal != header["state"]["count"]:
            return
        self.index = index
        self.dim = index.d
        self._state = IndexState(**header["state"])
        self._apply_nprobe()

    def state(self) -> IndexState | None:
        return self._state

    def reload(self) -> IndexState | None:
        """Replace the index in memory by the file (another process saved it after a forget)."""
        self.index, self._state = None, None
        self._load()
        if self.index is None and self.dim is not None:
            self.reset(self.dim)
        return self._state

    def save(self, state: IndexState) -> None:
        import faiss

        if self.index is None:  # nothing embedded yet: no file, an empty state is rebuilt for free
            self.path.unlink(missing_ok=True)
            self._state = state
            return
        self._maybe_switch_to_ivf()
        header = json.dumps({"state": state.__dict__, "kind": self.index_kind}).encode()
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            with open(tmp, "wb") as f:
                f.write(MAGIC + struct.pack("<I", len(header)) + header)
                faiss.write_index(self.index, faiss.PyCallbackIOWriter(f.write))  # streamed, no copy
                f.flush()
                os.fsync(f.fileno())
            make_private(tmp)
            os.replace(tmp, self.path)
        except OSError:
            # A full disk: no half file, and no old file either (it may hold vectors just
            # forgotten); the next open rebuilds from SQLite.
            tmp.unlink(missing_ok=True)
            self.path.unlink(missing_ok=True)
            self._state = None
            raise
        self._state = state

    # -- index kinds ---------------------------------------------------------------------------
    @property
    def approximate(self) -> bool:
        """Search scores come from compressed vectors (IVF-SQ8): a caller that needs exact cosines
        re-scores the candidates."""
        import faiss

        return self.index is not None and isinstance(faiss.downcast_index(self.index), faiss.IndexIVFScalarQuantizer)

    @property
    def index_kind(self) -> str:
        import faiss

        return "ivf" if isinstance(faiss.downcast_index(self.index), faiss.IndexIVF) else "flat"

    def reset(self, dim: int | None) -> None:
        """Empty the index; with no dimension yet (an empty store) it is created on the first add."""
        import faiss

        self.dim = dim
        self.index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim)) if dim else None
        self._state = None

    def _maybe_switch_to_ivf(self) -> None:
        """Move a grown flat index to IVF (auto), or retrain an IVF that outgrew its lists 4x."""
        import faiss

        n = self.index.ntotal
        kind = self.index_kind
        want_ivf = self.kind == "ivf" or (self.kind == "auto" and n > EXACT_LIMIT)
        if not want_ivf or n < 1000:  # IVF needs enough points to train its centroids
            return
        if kind == "ivf" and self.approximate:
            ivf = faiss.downcast_index(self.index)
            if _nlist_for(n) <= 2 * ivf.nlist:  # still about the size it was trained for
                return
        ids, vectors = self._all()  # a retrain from decoded codes: their error is ~0.2 % of a component
        nlist = _nlist_for(n)
        quantizer = faiss.IndexFlatIP(self.dim)
        ivf = faiss.IndexIVFScalarQuantizer(quantizer, self.dim, nlist, faiss.ScalarQuantizer.QT_8bit,
                                            faiss.METRIC_INNER_PRODUCT, False)  # raw vectors, not residuals
        rng = np.random.default_rng(0)
        sample = vectors[rng.choice(n, size=min(n, nlist * 64), replace=False)]
        ivf.train(sample)
        ivf.add_with_ids(vectors, ids)
        self.index = ivf
        self._apply_nprobe()

    def _apply_nprobe(self) -> None:
        import faiss

        if self.index_kind == "ivf":
            ivf = faiss.downcast_index(self.index)
            ivf.nprobe = self.nprobe or default_nprobe(ivf.nlist)

    def _all(self) -> tuple[np.ndarray, np.ndarray]:
        import faiss

        index = faiss.downcast_index(self.index)
        if isinstance(index, faiss.IndexIVF):
            # IVF-SQ8 keeps 8-bit codes of the raw vectors; IVFFlat (an earlier release's) float32 verbatim.
            sq = index.sq if isinstance(index, faiss.IndexIVFScalarQuantizer) else None
            lists, ids, vectors = index.invlists, [], []
            for i in range(index.nlist):
                size = lists.list_size(i)
                if size:
                    ids.append(faiss.rev_swig_ptr(lists.get_ids(i), size).copy())
                    codes = faiss.rev_swig_ptr(lists.get_codes(i), size * lists.code_size).copy()
                    vectors.append(sq.decode(codes.reshape(size, -1)) if sq is not None
                                   else np.frombuffer(codes, dtype=np.float32).reshape(size, self.dim))
            return np.concatenate(ids).astype(np.int64), np.vstack(vectors)
        ids = faiss.vector_to_array(index.id_map).astype(np.int64)
        vectors = index.index.reconstruct_n(0, index.ntotal)
        return ids, np.ascontiguousarray(vectors, dtype=np.float32)

    # -- the protocol --------------------------------------------------------------------------
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        if self.index is None or (self.index.ntotal == 0 and self.index.d != vectors.shape[1]):
            self.reset(vectors.shape[1])
        self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self.index is None or self.index.ntotal == 0 or k <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        import faiss

        faiss.omp_set_num_threads(SEARCH_THREADS)
        scores, ids = self.index.search(np.asarray(query, dtype=np.float32).reshape(1, -1), k)
        keep = ids[0] >= 0
        return ids[0][keep], scores[0][keep]

    def delete(self, ids: np.ndarray) -> None:
        import faiss

        if self.index is not None and len(ids):
            self.index.remove_ids(faiss.IDSelectorBatch(np.asarray(ids, dtype=np.int64)))

    def count(self) -> int:
        return 0 if self.index is None else int(self.index.ntotal)

    def disk_bytes(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def close(self) -> None:
        self.index = None


def _nlist_for(n: int) -> int:
    """About 4*sqrt(n) lists (a common FAISS rule of thumb), with at least 39 training points per
    list, the fewest k-means in FAISS accepts without a warning."""
    return max(16, min(int(4 * math.sqrt(n)), n // 39))


def default_nprobe(nlist: int) -> int:
    """Lists probed per query: chosen by the bench to keep recall@10 >= 0.95 against exact."""
    return max(8, nlist // 16)
