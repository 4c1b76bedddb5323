"""One SQLite connection: durability settings, integrity check, transactions, errors.

Durability: WAL journal with ``synchronous=FULL`` — a transaction is fsynced to the WAL
before ``commit`` returns, so a write acknowledged to the app survives the process being
killed at any instant (and power loss on honest storage). ``temp_store=MEMORY`` keeps
sort spills off the disk; ``secure_delete`` zeroes freed pages.

Errors: a full disk is :class:`StorageFull` (the transaction was rolled back); a page
that does not read is :class:`StoreCorrupted`; a closed connection :class:`StoreClosed`.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..._errors import StorageFull, StoreClosed, StoreCorrupted

SIDE_FILES = ("-wal", "-shm", "-journal")

Row = tuple[Any, ...]


class Database:
    """A connection shared by the tables of one store; ``path=None`` is in memory."""

    def __init__(self, path: Path | None, *, check_integrity: bool = True) -> None:
        self.path = path
        self.lock = threading.RLock()
        self._depth = 0
        try:
            conn = sqlite3.connect(
                str(path) if path else ":memory:", isolation_level=None, check_same_thread=False
            )
            self._conn: sqlite3.Connection | None = conn
            conn.execute("PRAGMA journal_mode=WAL" if path else "PRAGMA journal_mode=MEMORY")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA temp_store=MEMORY")
            conn.execute("PRAGMA secure_delete=ON")
            conn.execute("PRAGMA foreign_keys=OFF")
            self.tables = {
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
        except sqlite3.DatabaseError as exc:
            raise StoreCorrupted(f"not a Fieldsync store: {exc}") from None
        if self.tables and check_integrity:
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

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreClosed("the store is closed")
        return self._conn

    @property
    def closed(self) -> bool:
        return self._conn is None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic, durable unit; re-entrant (inner blocks join the outer one)."""
        with self.lock:
            conn = self.conn
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            try:
                conn.execute("BEGIN IMMEDIATE")
                self._depth = 1
                try:
                    yield
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

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[Row]:
        with self.lock:
            try:
                return self.conn.execute(sql, params).fetchall()
            except sqlite3.DatabaseError as exc:
                raise _translate(exc) from None

    def write(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        """Run one statement in a transaction; returns the rows it changed."""
        with self.transaction():
            try:
                return self.conn.execute(sql, params).rowcount
            except sqlite3.DatabaseError as exc:
                raise _translate(exc) from None

    def write_many(self, sql: str, rows: Iterable[tuple[Any, ...]]) -> None:
        with self.transaction():
            try:
                self.conn.executemany(sql, rows)
            except sqlite3.DatabaseError as exc:
                raise _translate(exc) from None

    def close(self) -> None:
        with self.lock:
            if self._conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                self._conn.close()
                self._conn = None

    def destroy(self, tables: Iterable[str]) -> None:
        """Overwrite the key material, empty every table, close, and delete the files."""
        with self.lock:
            if self._conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("UPDATE meta SET value = zeroblob(length(value))")
                    for table in tables:
                        self._conn.execute(f"DELETE FROM {table}")
                self._conn.close()
                self._conn = None
            if self.path is not None:
                remove_files(self.path)


def remove_files(path: Path) -> None:
    """Overwrite (best effort: flash may remap) and delete a store file and its side files."""
    for candidate in [path, *(Path(f"{path}{s}") for s in SIDE_FILES)]:
        with contextlib.suppress(FileNotFoundError):
            size = candidate.stat().st_size
            with open(candidate, "r+b") as fh:
                fh.write(b"\0" * size)
                fh.flush()
                os.fsync(fh.fileno())
            candidate.unlink()


def _translate(exc: sqlite3.DatabaseError) -> Exception:
    if isinstance(exc, sqlite3.OperationalError) and _is_disk_full(exc):
        return StorageFull("the device's storage is full: the change was not saved")
    if isinstance(exc, sqlite3.IntegrityError | sqlite3.OperationalError):
        return exc
    return StoreCorrupted(f"the store file is damaged: {exc}")


def _is_disk_full(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code == sqlite3.SQLITE_FULL or "full" in str(exc).lower()
