"""Engine and session factory: the same code on SQLite (default) and PostgreSQL.

SQLite is tuned for a server workload: WAL (readers never block the writer), a busy
timeout (writers queue instead of failing), ``synchronous=FULL`` (the WAL is fsynced
before a commit returns: a push answered ``applied`` survives a power cut, not only a
killed process — ``NORMAL`` would lose the last commits since the checkpoint) and
foreign keys on. ``tests/faults/test_durability.py`` holds these settings. PostgreSQL is reached through psycopg 3; a plain ``postgresql://`` URL is accepted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 30_000


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
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
