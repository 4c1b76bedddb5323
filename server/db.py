"""Engine and session factory: the same code on SQLite (default) and PostgreSQL.

SQLite is tuned for a server workload: WAL (readers never block the writer), a busy
timeout (writers queue instead of failing), ``synchronous=FULL`` (the WAL is fsynced
before a commit returns: a push answered ``applied`` survives a power cut, not only a
killed process — ``NORMAL`` would lose the last commits since the checkpoint) and
foreign keys on. ``tests/faults/test_durability.py`` holds these settings. PostgreSQL is reached through psycopg 3; a plain ``postgresql://`` URL is accepted.

**WAL checkpoints run beside the requests, not in them.** By default SQLite checkpoints
in the connection whose commit takes the WAL past 1,000 pages: about every other
1,000-mutation push then copied the WAL into the database (and fsynced it) before
answering. Here a committing connection checkpoints only past
:data:`WAL_AUTOCHECKPOINT_PAGES` (a safety net), and the server's background task
(:func:`checkpoint_task`, run by :mod:`server.operations`) does a ``PASSIVE`` checkpoint
every :data:`WAL_CHECKPOINT_INTERVAL_S` when the WAL was written since — it blocks
neither readers nor writers, and durability is unchanged (a commit still fsyncs the
WAL).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 30_000
#: A committing connection checkpoints the WAL itself only past this many pages (the
#: background task keeps it far below: :func:`checkpoint_task`).
WAL_AUTOCHECKPOINT_PAGES = 20_000
#: How often the background task checkpoints a WAL written since its last look (a
#: 1,000-mutation push writes ~3 MB of WAL).
WAL_CHECKPOINT_INTERVAL_S = 0.25


def normalize_url(url: str) -> str:
    """``postgresql://`` → ``postgresql+psycopg://`` (psycopg 3, not psycopg2)."""
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://") :]
    if url.startswith("postgres://"):
        return "postgresql+psycopg://" + url[len("postgres://") :]
    return url


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalize_url(url)
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        # Statement parameters (record fields) never appear in an error's message.
        kwargs.setdefault("hide_parameters", True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            **kwargs,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    # No pre-ping: it costs a round trip per request; stale connections are recycled.
    kwargs.setdefault("pool_recycle", 1800)
    kwargs.setdefault("hide_parameters", True)
    return create_engine(url, **kwargs)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def checkpoint_task(engine: Engine) -> Callable[[], object] | None:
    """The background WAL checkpoint of an SQLite ``engine`` (``None`` for PostgreSQL):
    a ``PASSIVE`` checkpoint whenever the WAL was written since the last one (one
    ``stat`` otherwise). Returns what it did, for tests: ``None`` (nothing new) or
    SQLite's ``(busy, WAL frames, frames checkpointed)``."""
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    if not database or database == ":memory:":
        return None
    wal = Path(f"{database}-wal")
    seen: list[tuple[int, int]] = []

    def checkpoint() -> tuple[int, int, int] | None:
        try:
            stat = wal.stat()
        except FileNotFoundError:
            return None
        # A checkpoint writes the database, not the WAL: an unchanged WAL file has
        # nothing new (the size alone does not tell: a reset WAL is written over).
        mark = (stat.st_mtime_ns, stat.st_size)
        if seen and seen[0] == mark:
            return None
        with engine.connect() as conn:
            row = conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
        seen[:] = [mark]
        return (int(row[0]), int(row[1]), int(row[2]))

    return checkpoint


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
