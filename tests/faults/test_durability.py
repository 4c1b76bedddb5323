"""Durability settings of both SQLite databases (issue 12, defect 12).

A SIGKILL cannot tell ``synchronous=NORMAL`` from ``FULL``: the operating system still
holds the written pages and writes them out after the process dies. Only a power cut
does — then WAL + ``NORMAL`` loses every commit since the last checkpoint, including
pushes the server already answered ``applied`` and writes the app already showed as
saved. So the kill tests cannot guard this and these tests do, on the real connections
each side opens:

* the server's engine (:func:`server.db.make_engine`): WAL, ``synchronous=FULL``;
* the device store (``client_sdk``'s SQLite ``Database``, under every ``Store``): WAL,
  ``synchronous=FULL``;

and a commit on the server's engine reaches the WAL file before it returns.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from client_sdk import FAST_KDF, Store
from server.db import make_engine
from sync_protocol import CRM_SCHEMA

FULL = 2  # PRAGMA synchronous: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA


def test_the_server_database_is_wal_with_synchronous_full(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'server.db'}")
    try:
        # Every pooled connection gets the settings, not only the first one.
        connections = [engine.connect() for _ in range(3)]
        for conn in connections:
            assert conn.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
            assert conn.execute(text("PRAGMA synchronous")).scalar_one() == FULL
        for conn in connections:
            conn.close()
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
            conn.execute(text("INSERT INTO t VALUES (1)"))
        # The commit is in the WAL (not only in memory) the moment it returned.
        assert (tmp_path / "server.db-wal").stat().st_size > 0
    finally:
        engine.dispose()


def test_the_device_store_is_wal_with_synchronous_full(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "phone.db", "a passphrase", schema=CRM_SCHEMA, kdf=FAST_KDF)
    try:
        store.collection("customers").insert({"name": "张三", "status": "potential"})
        database = store._core.local.db
        with database.lock:
            conn = database._conn
            assert conn is not None
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert conn.execute("PRAGMA synchronous").fetchone()[0] == FULL
        assert (tmp_path / "phone.db-wal").stat().st_size > 0
    finally:
        store.close()
