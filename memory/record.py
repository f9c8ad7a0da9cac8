"""The record: SQLite (through SQLAlchemy) is memchat's source of truth.

Tables: conversations, turns (with an FTS5 index over their text in context, see
memory/fulltext.py), embeddings (one row per chunk of a turn, the float32 vector stored as a
blob), pins (the turns the person keeps for every chat, memory/pins.py) and meta (embedding model,
dimension, index generation). Every vector index is derived
from these rows and can be rebuilt from them.

Schema upgrades are an ordered list of named migration functions; the `migrations` table records
the name of each one applied, as simonw/llm does (names survive reordering and branches better
than a count). `PRAGMA user_version` still holds the number applied, so an older memchat, which
reads only that, refuses a store a newer one has upgraded. No Alembic: it would add a dependency,
config files and a second place to look.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from sqlalchemy import (
    Column,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import Connection, Engine

from memory.runtime.private_files import make_private

metadata = MetaData()

meta = Table("meta", metadata, Column("key", String, primary_key=True), Column("value", Text))

conversations = Table(
    "conversations",
    metadata,
    Column("id", String, primary_key=True),
    Column("title", Text, nullable=False, default=""),
    Column("created_at", Float, nullable=False),  # epoch seconds, UTC
    Column("updated_at", Float, nullable=False),
)

turns = Table(
    "turns",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("conversation_id", String, ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("role", String, nullable=False),  # user | assistant | system
    Column("text", Text, nullable=False),
    Column("created_at", Float, nullable=False, index=True),  # epoch seconds, UTC
    Column("status", String, nullable=False, default="ok"),  # ok | failed | stopped
    Column("backend", String),
    Column("model", String),
    Column("tokens", Integer),
    Column("meta", Text, nullable=False, default="{}"),  # JSON object
    # Hash of (conversation, role, created_at, text): importing the same record twice adds it once.
    Column("content_key", String, nullable=False, unique=True),
    sqlite_autoincrement=True,  # ids are never reused, so an index can catch up by "id > max_id"
)

embeddings = Table(
    "embeddings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),  # the vector id in every index
    Column("turn_id", Integer, ForeignKey("turns.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("chunk", Integer, nullable=False),  # 0 for the first (usually only) window of the turn
    Column("start", Integer, nullable=False),  # character span of the chunk inside turns.text
    Column("end", Integer, nullable=False),
    Column("model", String, nullable=False),  # the embedding model that made this vector
    Column("vector", LargeBinary, nullable=False),  # float32, unit length, meta.embed_dim values
    sqlite_autoincrement=True,
)

# Tables a later migration made with its own DDL: declared apart, so migration 1's create_all (which
# a new store runs first) does not make them before their migration does.
later = MetaData()
PINS_DDL = ("CREATE TABLE pins (turn_id INTEGER PRIMARY KEY REFERENCES turns(id) ON DELETE CASCADE, "
            "pinned_at REAL NOT NULL)")  # no text of its own: a forgotten turn takes its pin with it
pins = Table("pins", later, Column("turn_id", Integer, primary_key=True), Column("pinned_at", Float, nullable=False))

FTS_TOKENIZER = "porter unicode61 remove_diacritics 2"
# Scratch full-text tables in each connection's temp schema, with the index's tokenizer: `stemmer`
# stems a query word, `said` tokenizes recall's candidates (memory/query_words.py).
# Contentless (content=''): emptied with 'delete-all', they keep no token of what passed through.
SCRATCH_DDL = [
    f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.stemmer USING fts5(w, content='', tokenize='{FTS_TOKENIZER}')",
    "CREATE VIRTUAL TABLE IF NOT EXISTS temp.stemmer_vocab USING fts5vocab(temp, stemmer, 'row')",
    f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.said USING fts5(text, before, after, content='', tokenize='{FTS_TOKENIZER}')",
    "CREATE VIRTUAL TABLE IF NOT EXISTS temp.said_terms USING fts5vocab(temp, said, 'instance')",
]
FTS_DDL = [
    # External-content FTS5: the text lives once, in turns; the porter stemmer lets "hiking" match "hike".
    f"CREATE VIRTUAL TABLE turns_fts USING fts5(text, content='turns', content_rowid='id', tokenize='{FTS_TOKENIZER}')",
    "CREATE TRIGGER turns_fts_insert AFTER INSERT ON turns BEGIN "
    "INSERT INTO turns_fts(rowid, text) VALUES (new.id, new.text); END",
    "CREATE TRIGGER turns_fts_delete AFTER DELETE ON turns BEGIN "
    "INSERT INTO turns_fts(turns_fts, rowid, text) VALUES ('delete', old.id, old.text); END",
    "CREATE TRIGGER turns_fts_update AFTER UPDATE OF text ON turns BEGIN "
    "INSERT INTO turns_fts(turns_fts, rowid, text) VALUES ('delete', old.id, old.text); "
    "INSERT INTO turns_fts(rowid, text) VALUES (new.id, new.text); END",
]


def _migration_1_initial(conn: Connection) -> None:
    metadata.create_all(conn)
    for ddl in FTS_DDL:
        conn.exec_driver_sql(ddl)


def _migration_2_term_statistics(conn: Connection) -> None:
    # Per-term document counts of the full-text index, read by recall to skip terms so common that
    # ranking their postings costs more than it tells (see memory/recall.py).
    conn.exec_driver_sql("CREATE VIRTUAL TABLE turns_fts_vocab USING fts5vocab(turns_fts, 'row')")


def _migration_3_turns_in_context(conn: Connection) -> None:
    # The full-text index gains each turn's neighbours' words (memory/fulltext.py); maintained by
    # code rather than triggers, since inserting or deleting a turn changes its neighbours' rows.
    from memory import fulltext

    for trigger in ("turns_fts_insert", "turns_fts_delete", "turns_fts_update"):
        conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {trigger}")
    conn.exec_driver_sql("DROP TABLE IF EXISTS turns_fts_vocab")
    conn.exec_driver_sql("DROP TABLE IF EXISTS turns_fts")
    for ddl in fulltext.fts_ddl(FTS_TOKENIZER):
        conn.exec_driver_sql(ddl)
    fulltext.rebuild(conn)


def _migration_4_failed_replies_unindexed(conn: Connection) -> None:
    # A failed reply's placeholder text leaves the full-text index, its own row and its
    # neighbours' (memory/fulltext.py VIEW_DDL): a new view, and the index rebuilt from it.
    from memory import fulltext

    conn.exec_driver_sql("DROP VIEW IF EXISTS turns_in_context")
    conn.exec_driver_sql(fulltext.VIEW_DDL)
    fulltext.rebuild(conn)


def _migration_5_forgotten_conversations(conn: Connection) -> None:
    # Before a forget tidied conversations (memory/forgetting.py), forgetting every turn of one left
    # its row, titled after its first message: those rows go, and open_record then empties the WAL.
    conn.exec_driver_sql("DELETE FROM conversations WHERE NOT EXISTS "
                         "(SELECT 1 FROM turns WHERE turns.conversation_id = conversations.id)")


def _migration_6_pins(conn: Connection) -> None:
    # Standing memories (memory/pins.py): the turns the person keeps for every chat, and since when.
    conn.exec_driver_sql(PINS_DDL)


def _migration_7_embedding_models(conn: Connection) -> None:
    # Every open checks that all vectors come from the configured model (memory/embedding_upkeep.py):
    # with this index two lookups, where a scan of the vectors took 0.5 s at a million memories.
    # (model, turn_id), not model alone, which every row matches: a lookup of some turns' vectors of
    # one model reads both columns, in this release and in one still running the release before.
    conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS ix_embeddings_model_turn ON embeddings(model, turn_id)")
    # Recall counts a word's rows from the index itself now (memory/query_words.py), which is bounded
    # where the vocabulary table walks every posting: the table of migration 2 is no longer read.
    conn.exec_driver_sql("DROP TABLE IF EXISTS turns_fts_vocab")


# Append new migrations at the end; never edit, rename or reorder one that has shipped.
MIGRATIONS: list[Callable[[Connection], None]] = [
    _migration_1_initial, _migration_2_term_statistics, _migration_3_turns_in_context,
    _migration_4_failed_replies_unindexed, _migration_5_forgotten_conversations, _migration_6_pins,
    _migration_7_embedding_models,
]
SCHEMA_VERSION = len(MIGRATIONS)


def migration_name(migration: Callable) -> str:
    return migration.__name__.removeprefix("_migration_")


def _migrate(conn: Connection, path: Path) -> bool:
    """Apply the migrations this store lacks; True if any was."""
    conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
    applied = set(conn.exec_driver_sql("SELECT name FROM migrations").scalars())
    version = conn.exec_driver_sql("PRAGMA user_version").scalar_one()
    known = [migration_name(m) for m in MIGRATIONS]
    if not applied and version:  # a store from before migrations were named: user_version counted them
        applied = set(known[:version])
        conn.execute(text("INSERT INTO migrations(name, applied_at) VALUES (:n, 0)"), [{"n": n} for n in applied])
    unknown = applied - set(known)
    if unknown or version > SCHEMA_VERSION:
        from memory.errors import MemoryError_

        raise MemoryError_(f"{path} was upgraded by a newer memchat (migrations {', '.join(sorted(unknown)) or version} "
                           "unknown here); upgrade memchat")
    upgraded = False
    for migrate, name in zip(MIGRATIONS, known):
        if name not in applied:
            migrate(conn)
            conn.execute(text("INSERT INTO migrations(name, applied_at) VALUES (:n, :t)"), {"n": name, "t": time.time()})
            upgraded = True
    if version != SCHEMA_VERSION:
        conn.exec_driver_sql(f"PRAGMA user_version={SCHEMA_VERSION}")
    return upgraded


def _set_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: a commit is on disk before remember() returns, so an acknowledged turn survives a crash.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # Freed pages are zeroed, so forgotten text does not linger in the file's free space.
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    # Recall's scratch tables hold a turn's text or a query's word for a moment: in memory, never in
    # a temp file. Made here, once a connection, outside any transaction that would roll them back.
    cursor.execute("PRAGMA temp_store=MEMORY")
    for ddl in SCRATCH_DDL:
        cursor.execute(ddl)
    cursor.close()


def open_record(path: Path) -> Engine:
    """Open (creating or upgrading) the SQLite store at `path`."""
    engine = create_engine(f"sqlite:///{path}")
    event.listen(engine, "connect", _set_pragmas)
    with engine.begin() as conn:
        upgraded = _migrate(conn, path)
    if upgraded:  # a migration may have deleted text: its pages were zeroed, the WAL still holds them
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    for suffix in ("", "-wal", "-shm"):
        make_private(Path(f"{path}{suffix}"))
    return engine


def in_list(ids) -> str:
    """A literal SQL list of integer ids, "(1,2,3)", for the statements a recall runs: rendered
    rather than bound (int() makes that safe), so the statement goes straight to SQLite. An
    expanding IN made SQLAlchemy render each statement anew, ~2 ms of a 10k recall's ~8."""
    listed = ",".join(str(int(i)) for i in ids)
    return f"({listed or 'NULL'})"


def words_list(words) -> tuple[str, dict]:
    """A bound SQL list of strings, "(:w0,:w1)", and its parameters, for exec_driver_sql."""
    params = {f"w{n}": w for n, w in enumerate(words)}
    return "(" + (",".join(f":{name}" for name in params) or "NULL") + ")", params


def get_meta(conn: Connection, key: str, default: str | None = None) -> str | None:
    value = conn.exec_driver_sql("SELECT value FROM meta WHERE key = :k", {"k": key}).first()
    return default if value is None else value[0]


def set_meta(conn: Connection, key: str, value: str) -> None:
    conn.execute(
        text("INSERT INTO meta(key, value) VALUES (:k, :v) ON CONFLICT(key) DO UPDATE SET value = :v"),
        {"k": key, "v": value},
    )


def bump_generation(conn: Connection) -> None:
    """Tell every vector index that vectors were deleted or replaced: it must rebuild, not catch up."""
    set_meta(conn, "index_generation", str(int(get_meta(conn, "index_generation", "0")) + 1))


def scrub(engine: Engine) -> None:
    """Remove deleted text from the file bytes: merge FTS segments, then empty the WAL.

    secure_delete zeroes freed pages, but FTS5 keeps deleted terms in old segments until they are
    merged ('optimize'), and the WAL can still hold pre-delete page images until checkpointed.
    """
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO turns_fts(turns_fts) VALUES ('optimize')")
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
