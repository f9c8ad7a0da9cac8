"""A turn's cosine with a query, from the vectors SQLite keeps: for a long turn (several windows)
the mean over its windows, and exactly over a filtered set of turns."""
from __future__ import annotations

import numpy as np
from sqlalchemy import text
from sqlalchemy.engine import Connection

from memory.record import in_list


def window_vectors(conn: Connection, turn_ids: list[int], model: str) -> dict[int, np.ndarray]:
    """Each turn's window vectors under `model`, one row a window in order, by id."""
    if not turn_ids:
        return {}
    rows = conn.exec_driver_sql(
        f"SELECT turn_id, vector FROM embeddings WHERE model = :model AND turn_id IN {in_list(turn_ids)} "
        "ORDER BY turn_id, chunk", {"model": model}).all()
    blobs: dict[int, list[bytes]] = {}
    for turn_id, blob in rows:
        blobs.setdefault(turn_id, []).append(blob)
    return {turn_id: np.frombuffer(b"".join(found), dtype=np.float32).reshape(len(found), -1)
            for turn_id, found in blobs.items()}


def mean_over_windows(conn: Connection, qvec: np.ndarray, turn_ids: list[int], model: str) -> dict[int, float]:
    """The mean cosine over all windows of each of those turns (long turns: a short one's single
    window is its score already), by id.

    A long reply's best window matches almost any question on its topic; the mean says how much
    of the turn is about the question. On person-assistant conversations, where most replies run
    past MiniLM's 256-token window, dense recall@10 rose from 0.71 to 0.75 on the first version of
    the assistant set (docs/recall.md, issue 23); LoCoMo's turns are short, so nothing there moves."""
    return {turn_id: float(np.mean(windows @ qvec))
            for turn_id, windows in window_vectors(conn, turn_ids, model).items()}


EXACT_BATCH = 2_048  # vectors scored at a time: ~3 MB at 384 dims, however many turns match


def exact_scores(conn, qvec, n, where, params, exclude) -> list[tuple[int, float]]:
    """The best n matching turns by exact inner product (a long turn: the mean over its windows),
    reading the vectors in batches so a broad filter never holds all of them at once (it loaded up
    to 50k vectors, ~77 MB, per query)."""
    total: dict[int, float] = {}
    windows: dict[int, int] = {}
    rows = conn.execute(
        text(f"SELECT e.turn_id, e.vector FROM embeddings e JOIN turns t ON t.id = e.turn_id WHERE {where}"),
        params,
    )
    for batch in rows.partitions(EXACT_BATCH):
        batch = [r for r in batch if r[0] not in exclude]
        if not batch:
            continue
        scores = np.frombuffer(b"".join(r[1] for r in batch), dtype=np.float32).reshape(len(batch), -1) @ qvec
        for (turn_id, _), score in zip(batch, scores.tolist()):
            total[turn_id] = total.get(turn_id, 0.0) + score
            windows[turn_id] = windows.get(turn_id, 0) + 1
    return sorted(((t, total[t] / windows[t]) for t in total), key=lambda item: -item[1])[:n]
