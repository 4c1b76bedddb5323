"""Test databases copied from a template built once per pytest process.

Migrating a database (16 Alembic revisions, then ``ANALYZE``) and hashing the test
users' passwords (Argon2id) costs ~0.7 s on SQLite and ~1.5–2 s on PostgreSQL on this
machine — per test that builds a world or starts a server. A :class:`DatabaseTemplate`
runs its ``build`` (the same real code: ``server.migrate.upgrade``, ``create_user``…)
ONCE per process into a template, and :meth:`DatabaseTemplate.fill` then turns an
*empty* scratch database into a copy of it:

* SQLite: the template file is copied to the (not yet existing, or empty) path;
* PostgreSQL: the empty database is dropped and re-created with
  ``CREATE DATABASE … TEMPLATE <template>`` (a file-level copy: schema, rows, sequences
  and the planner statistics ``upgrade`` collected).

``fill`` returns False — and the caller runs the slow path as before — when the target
is not empty (a test migrated it itself, or left it at an older revision), is in use,
or is neither SQLite nor PostgreSQL. Each copy is an independent database: nothing
written by one test is seen by another. The templates are removed at exit.

    MIGRATED = shared_template("migrated", server.migrate.upgrade)
    if not MIGRATED.fill(db_url):
        upgrade(db_url)
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

_SQLITE_PREFIX = "sqlite:///"
#: The database to connect to while creating and dropping others (as tests/conftest.py).
_ADMIN_DB = (
    os.environ.get("FIELDSYNC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    .rpartition("/")[2]
    .split("?")[0]
    or "postgres"
)


def _is_postgres(url: str) -> bool:
    return url.startswith(("postgresql://", "postgresql+psycopg://", "postgres://"))


def _libpq(url: str) -> str:
    for prefix in ("postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


def _split(url: str) -> tuple[str, str]:
    """``postgresql://…/name`` → (server part, database name); no query strings."""
    base, _, name = _libpq(url).rpartition("/")
    if not name or "?" in name:
        raise ValueError(f"unsupported database URL for templating: {url}")
    return base, name


_SHARED: dict[str, DatabaseTemplate] = {}


def shared_template(name: str, build: Callable[[str], None]) -> DatabaseTemplate:
    """The process's one template called ``name`` (a conftest may be imported twice,
    as ``conftest`` by pytest and as ``tests.server.conftest`` by a test module: both
    copies must share the template and its bookkeeping)."""
    if name not in _SHARED:
        _SHARED[name] = DatabaseTemplate(name, build)
    return _SHARED[name]


class DatabaseTemplate:
    """One template per backend (and per server for PostgreSQL), built on first use."""

    def __init__(self, name: str, build: Callable[[str], None]) -> None:
        self.name = name
        self._build = build
        self._lock = threading.Lock()
        self._sqlite: Path | None = None
        self._postgres: dict[str, str] = {}  # server part -> template database name
        self._copies: set[str] = set()  # databases made by create_postgres, not yet filled
        atexit.register(self.close)

    # ---- SQLite ---------------------------------------------------------------------

    def _sqlite_template(self) -> Path:
        if self._sqlite is None:
            directory = Path(tempfile.mkdtemp(prefix=f"fieldsync-template-{self.name}-"))
            path = directory / "template.db"
            self._build(f"{_SQLITE_PREFIX}{path}")
            self._sqlite = path
        return self._sqlite

    def _fill_sqlite(self, url: str) -> bool:
        target = Path(url[len(_SQLITE_PREFIX) :])
        if not target.parent.is_dir():
            return False
        for suffix in ("", "-wal", "-shm", "-journal"):
            sibling = target.with_name(target.name + suffix)
            if sibling.exists() and (suffix or sibling.stat().st_size > 0):
                return False
        template = self._sqlite_template()
        shutil.copyfile(template, target)
        # The build's engine was disposed, so SQLite checkpointed and removed the WAL;
        # copy it all the same if one was left behind.
        wal = template.with_name(template.name + "-wal")
        if wal.exists():
            shutil.copyfile(wal, target.with_name(target.name + "-wal"))
        return True

    # ---- PostgreSQL -----------------------------------------------------------------

    def _postgres_template(self, base: str) -> str:
        import psycopg

        if base not in self._postgres:
            name = f"fs_tmpl_{self.name}_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(f"{base}/{_ADMIN_DB}", autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            try:
                self._build(f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://"))
                with psycopg.connect(f"{base}/{_ADMIN_DB}", autocommit=True) as conn:
                    # Nothing may connect to it any more: CREATE DATABASE … TEMPLATE
                    # needs a source nobody is connected to.
                    conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
            except BaseException:
                with psycopg.connect(f"{base}/{_ADMIN_DB}", autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                raise
            self._postgres[base] = name
        return self._postgres[base]

    def create_postgres(self, url: str) -> None:
        """Create the database ``url`` names as a copy of the template (cheaper than
        creating it empty and filling it); the next :meth:`fill` of it is a no-op."""
        import psycopg

        base, name = _split(url)
        with self._lock:
            template = self._postgres_template(base)
            with psycopg.connect(f"{base}/{_ADMIN_DB}", autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
            self._copies.add(name)

    def _fill_postgres(self, url: str) -> bool:
        import psycopg

        base, name = _split(url)
        if name in self._copies:
            self._copies.discard(name)
            return True
        with psycopg.connect(f"{base}/{name}", autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_tables "
                "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
            ).fetchone()
        if row is None or row[0] != 0:
            return False
        template = self._postgres_template(base)
        with psycopg.connect(f"{base}/{_ADMIN_DB}", autocommit=True) as conn:
            try:
                conn.execute(f'DROP DATABASE "{name}"')  # no FORCE: in use → slow path
            except psycopg.errors.ObjectInUse:
                return False
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return True

    # ---- public ---------------------------------------------------------------------

    def fill(self, url: str) -> bool:
        """Make the empty database at ``url`` a copy of the template; False (and
        nothing changed) when it is not empty or cannot be templated."""
        with self._lock:
            if url.startswith(_SQLITE_PREFIX) and url != _SQLITE_PREFIX:
                return self._fill_sqlite(url)
            if _is_postgres(url):
                return self._fill_postgres(url)
            return False

    def close(self) -> None:
        if self._sqlite is not None:
            shutil.rmtree(self._sqlite.parent, ignore_errors=True)
            self._sqlite = None
        if self._postgres:
            import psycopg

            for base, name in self._postgres.items():
                with (
                    contextlib.suppress(Exception),
                    psycopg.connect(f"{base}/{_ADMIN_DB}", autocommit=True) as conn,
                ):
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            self._postgres.clear()
