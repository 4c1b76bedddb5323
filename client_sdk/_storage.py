"""The storage seam: an SQLite file (through sqlite-utils) holding opaque rows.

The storage layer knows tables and bytes, never plaintext: every payload it receives is
already sealed by the store's cipher. Ids, collection names, versions and HLCs are the
only clear text (they carry no customer data).

Durability: WAL journal with ``synchronous=FULL`` — a transaction is fsynced to the WAL
before ``commit`` returns, so a write acknowledged to the app survives the process being
killed at any instant (and power loss on honest storage). ``temp_store=MEMORY`` keeps
sort spills off the disk; ``secure_delete`` zeroes freed pages.

``SqliteStorage(None)`` is the in-memory implementation (same code, ``:memory:``).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import sqlite_utils

from ._errors import StorageFull, StoreClosed, StoreCorrupted

FORMAT_VERSION = 1
SIDE_FILES = ("-wal", "-shm", "-journal")


class Storage(Protocol):
    """What the store needs from a database: tables of opaque rows and transactions."""

    lock: threading.RLock

    def transaction(self) -> contextlib.AbstractContextManager[sqlite3.Connection]: ...

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]: ...

    def get_meta(self, key: str) -> bytes | None: ...

    def set_meta(self, key: str, value: bytes | None) -> None: ...

    def is_new(self) -> bool: ...

    def create_tables(self) -> None: ...

    def close(self) -> None: ...

    def destroy(self) -> None: ...


class SqliteStorage:
    """SQLite through sqlite-utils; ``path=None`` keeps everything in memory."""

    def __init__(
        self, path: str | os.PathLike[str] | None, *, check_integrity: bool = True
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.lock = threading.RLock()
        self._depth = 0
        try:
            conn = sqlite3.connect(
                str(self.path) if self.path else ":memory:",
                isolation_level=None,
                check_same_thread=False,
            )
            self.db = sqlite_utils.Database(conn)
            self._conn: sqlite3.Connection | None = conn
            conn.execute("PRAGMA journal_mode=WAL" if self.path else "PRAGMA journal_mode=MEMORY")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA temp_store=MEMORY")
            conn.execute("PRAGMA secure_delete=ON")
            conn.execute("PRAGMA foreign_keys=OFF")
            tables = set(self.db.table_names())
        except sqlite3.DatabaseError as exc:
            raise StoreCorrupted(f"not a Fieldsync store: {exc}") from None
        self._new = "meta" not in tables
        if not self._new and not {"records", "outbox", "dead_letters"} <= tables:
            raise StoreCorrupted("the store file is missing tables")
        if self._new and tables:
            raise StoreCorrupted("the file is an SQLite database but not a Fieldsync store")
        if not self._new and check_integrity:
            self._check_integrity(conn)

    @staticmethod
    def _check_integrity(conn: sqlite3.Connection) -> None:
        """Detect a damaged file at open, not at some later read (``quick_check`` reads
        every page once: tens of milliseconds for tens of thousands of records)."""
        try:
            problems = [row[0] for row in conn.execute("PRAGMA quick_check(5)").fetchall()]
        except sqlite3.DatabaseError as exc:
            raise StoreCorrupted(f"the store file is damaged: {exc}") from None
        if problems != ["ok"]:
            raise StoreCorrupted("the store file is damaged: " + "; ".join(problems))

    # -- schema --------------------------------------------------------------------------
    def create_tables(self) -> None:
        """Create the tables; the caller's transaction makes creation and key setup atomic
        (a process killed during the first open leaves an empty file, not a broken one)."""
        db = self.db
        with self.transaction():
            db.table("meta").create({"key": str, "value": bytes}, pk="key", if_not_exists=True)
            db.table("records").create(
                {
                    "collection": str,
                    "id": str,
                    "version": int,
                    "deleted": int,
                    "gen": int,
                    "payload": bytes,
                },
                pk=("collection", "id"),
                not_null={"collection", "id", "deleted", "gen", "payload"},
                if_not_exists=True,
            )
            db.table("outbox").create(
                {
                    "seq": int,
                    "id": str,
                    "collection": str,
                    "record_id": str,
                    "op": str,
                    "base_version": int,
                    "hlc": str,
                    "created_at": float,
                    "sent": int,
                    "resolves": str,
                    "payload": bytes,
                },
                pk="seq",
                not_null={"id", "collection", "record_id", "op", "hlc", "sent", "payload"},
                if_not_exists=True,
            )
            db.table("outbox").create_index(["id"], unique=True, if_not_exists=True)
            db.table("outbox").create_index(["collection", "record_id"], if_not_exists=True)
            db.table("dead_letters").create(
                {
                    "id": str,
                    "collection": str,
                    "record_id": str,
                    "op": str,
                    "created_at": float,
                    "payload": bytes,
                },
                pk="id",
                if_not_exists=True,
            )

    # -- access --------------------------------------------------------------------------
    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreClosed("the store is closed")
        return self._conn

    def is_new(self) -> bool:
        return self._new

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic, durable unit; re-entrant (inner blocks join the outer one)."""
        with self.lock:
            conn = self.conn
            if self._depth:
                self._depth += 1
                try:
                    yield conn
                finally:
                    self._depth -= 1
                return
            try:
                conn.execute("BEGIN IMMEDIATE")
                self._depth = 1
                try:
                    yield conn
                except BaseException:
                    self._depth = 0
                    # SQLite rolls back by itself on some errors (SQLITE_FULL, IOERR);
                    # a second ROLLBACK would raise and hide the real error.
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                self._depth = 0
                try:
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.OperationalError as exc:
                if _is_disk_full(exc):
                    raise StorageFull(
                        "the device's storage is full: the change was not saved; free some "
                        "space and try again"
                    ) from exc
                raise

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self.lock:
            try:
                return self.conn.execute(sql, params).fetchall()
            except sqlite3.DatabaseError as exc:
                if isinstance(exc, sqlite3.IntegrityError | sqlite3.OperationalError):
                    raise
                raise StoreCorrupted(f"the store file is damaged: {exc}") from None

    def get_meta(self, key: str) -> bytes | None:
        rows = self.execute("SELECT value FROM meta WHERE key = ?", (key,))
        return bytes(rows[0][0]) if rows else None

    def set_meta(self, key: str, value: bytes | None) -> None:
        with self.transaction() as conn:
            if value is None:
                conn.execute("DELETE FROM meta WHERE key = ?", (key,))
            else:
                conn.execute(
                    "INSERT INTO meta(key, value) VALUES (?, ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    (key, value),
                )

    def close(self) -> None:
        with self.lock:
            if self._conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                self._conn.close()
                self._conn = None

    def destroy(self) -> None:
        """Overwrite the key material, close, and delete the file with its side files."""
        with self.lock:
            if self._conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("UPDATE meta SET value = zeroblob(length(value))")
                    self._conn.execute("DELETE FROM meta")
                    self._conn.execute("DELETE FROM records")
                    self._conn.execute("DELETE FROM outbox")
                    self._conn.execute("DELETE FROM dead_letters")
                self._conn.close()
                self._conn = None
            if self.path is not None:
                for candidate in [self.path, *(Path(f"{self.path}{s}") for s in SIDE_FILES)]:
                    with contextlib.suppress(FileNotFoundError):
                        size = candidate.stat().st_size
                        with open(candidate, "r+b") as fh:  # best effort: flash may remap
                            fh.write(b"\0" * size)
                            fh.flush()
                            os.fsync(fh.fileno())
                        candidate.unlink()


def _is_disk_full(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code == sqlite3.SQLITE_FULL or "full" in str(exc).lower()
