"""The tables of a store file and how older files are brought up to date.

``meta.format`` records the file format. Version 1 (round 1) had no mutation groups and
created the ``attachments`` table on first use; version 2 adds ``group_id`` to the
outbox and the dead letters and always has ``attachments``; version 3 adds
``search_index`` (sealed search texts, built on first search); version 4 a partial index
of tombstones, so counting live records reads only the primary key. :func:`upgrade` moves a
version-1 file forward in one transaction at open; a file from a newer SDK is refused.
"""

from __future__ import annotations

from ..._errors import StoreCorrupted
from .connection import Database

FORMAT_VERSION = 4

#: The tables of the current format; a store file has exactly these.
TABLES = ("meta", "records", "outbox", "dead_letters", "attachments", "search_index")

_DDL = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB)",
    """CREATE TABLE IF NOT EXISTS records (
        collection TEXT NOT NULL, id TEXT NOT NULL, version INTEGER,
        deleted INTEGER NOT NULL, gen INTEGER NOT NULL, payload BLOB NOT NULL,
        PRIMARY KEY (collection, id))""",
    """CREATE TABLE IF NOT EXISTS outbox (
        seq INTEGER PRIMARY KEY, id TEXT NOT NULL, collection TEXT NOT NULL,
        record_id TEXT NOT NULL, op TEXT NOT NULL, base_version INTEGER, hlc TEXT NOT NULL,
        created_at FLOAT, sent INTEGER NOT NULL, resolves TEXT, payload BLOB NOT NULL,
        group_id TEXT)""",
    "CREATE UNIQUE INDEX IF NOT EXISTS idx_outbox_id ON outbox (id)",
    "CREATE INDEX IF NOT EXISTS idx_outbox_collection_record_id ON outbox (collection, record_id)",
    """CREATE TABLE IF NOT EXISTS dead_letters (
        id TEXT PRIMARY KEY, collection TEXT, record_id TEXT, op TEXT, created_at FLOAT,
        payload BLOB, group_id TEXT)""",
    """CREATE TABLE IF NOT EXISTS attachments (
        id TEXT PRIMARY KEY, collection TEXT NOT NULL, record_id TEXT NOT NULL,
        state TEXT NOT NULL, chunk_size INTEGER NOT NULL,
        uploaded_bytes INTEGER NOT NULL DEFAULT 0, registered INTEGER NOT NULL DEFAULT 0,
        local INTEGER NOT NULL DEFAULT 1, created_at REAL NOT NULL, payload BLOB NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS ix_attachments_record ON attachments (record_id)",
    "CREATE INDEX IF NOT EXISTS ix_records_tombstones ON records (collection) WHERE deleted = 1",
    """CREATE TABLE IF NOT EXISTS search_index (
        collection TEXT NOT NULL, seg INTEGER NOT NULL, entries INTEGER NOT NULL,
        payload BLOB NOT NULL, PRIMARY KEY (collection, seg))""",
)


def create(db: Database) -> None:
    """Create every table of the current format (in the caller's transaction)."""
    with db.transaction():
        for statement in _DDL:
            db.conn.execute(statement)
        db.conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('format', ?)",
            (str(FORMAT_VERSION).encode(),),
        )


def check(db: Database) -> bool:
    """``True`` for an empty file (a new store); raises for a file that is not a store."""
    tables = db.tables
    if "meta" not in tables:
        if tables:
            raise StoreCorrupted("the file is an SQLite database but not a Fieldsync store")
        return True
    if not {"records", "outbox", "dead_letters"} <= tables:
        raise StoreCorrupted("the store file is missing tables")
    return False


def upgrade(db: Database) -> None:
    """Bring an existing file to :data:`FORMAT_VERSION` (one transaction)."""
    rows = db.query("SELECT value FROM meta WHERE key = 'format'")
    try:
        version = int(bytes(rows[0][0])) if rows else 0
    except ValueError:
        raise StoreCorrupted("the store's format is unreadable") from None
    if version > FORMAT_VERSION:
        raise StoreCorrupted("the store was written by a newer SDK")
    if version == FORMAT_VERSION:
        return
    with db.transaction():
        for table in ("outbox", "dead_letters"):
            columns = {r[1] for r in db.conn.execute(f"PRAGMA table_info({table})")}
            if "group_id" not in columns:
                db.conn.execute(f"ALTER TABLE {table} ADD COLUMN group_id TEXT")
        create(db)
    db.tables = set(TABLES)
