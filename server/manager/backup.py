"""Backup and restore: ``fieldsync backup`` / ``fieldsync restore``.

* **SQLite** — the sqlite3 *online backup API* copies the database page by page inside
  one read transaction (``pages=-1``: a single step), so the copy is the consistent
  snapshot of one moment even while the server keeps writing (WAL: writers are not
  blocked). The copy is written to a temporary file beside the output and renamed into
  place, so a crash never leaves a half-written backup under the final name.
* **PostgreSQL** — ``pg_dump --format=custom`` (one ``REPEATABLE READ`` snapshot, so it
  too is consistent while the server runs) and ``pg_restore`` into an empty database.
  The binaries come from ``PATH`` (or ``FIELDSYNC_PG_BIN``); their major version must be
  at least the server's.

Restore refuses a target that already holds tables unless ``force`` is given (for
PostgreSQL, ``force`` adds ``--clean --if-exists``). Stop the server before restoring
over its live database.

Every restore starts a new **epoch** (:func:`server.repository.state.new_epoch`): the
restored counter is behind what devices have already pulled, so every checkpoint they
hold is answered ``resync_required`` instead of silently skipping the versions that
are handed out again. (Restoring by other means? Run ``fieldsync db new-epoch``.)
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from ..db import is_sqlite, normalize_url


class BackupError(Exception):
    """A backup or restore could not be done (the message says why)."""


@dataclass(frozen=True, slots=True)
class BackupResult:
    path: Path
    bytes: int
    kind: str


def _sqlite_path(database_url: str) -> Path:
    database = make_url(normalize_url(database_url)).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(database)


def libpq_url(database_url: str) -> str:
    """``postgresql+psycopg://…`` → ``postgresql://…`` for pg_dump and pg_restore."""
    url = make_url(normalize_url(database_url)).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def _pg_tool(name: str) -> str:
    folder = os.environ.get("FIELDSYNC_PG_BIN")
    if folder:
        candidate = Path(folder) / name
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name) or (
        f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None
    )
    if found is None:
        raise BackupError(
            f"{name} not found: install the PostgreSQL client or set FIELDSYNC_PG_BIN"
        )
    return found


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BackupError(f"{Path(command[0]).name} failed: {done.stderr.strip()}")


def backup(database_url: str, output: Path | str) -> BackupResult:
    """Write a consistent copy of the database to ``output``."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    partial.unlink(missing_ok=True)
    if is_sqlite(normalize_url(database_url)):
        source_path = _sqlite_path(database_url)
        if not source_path.exists():
            raise BackupError(f"no database at {source_path}")
        source = sqlite3.connect(source_path, timeout=30)
        try:
            target = sqlite3.connect(partial)
            try:
                source.backup(target)  # pages=-1: the whole file in one read transaction
                target.execute("PRAGMA journal_mode=DELETE")  # a self-contained single file
            finally:
                target.close()
        finally:
            source.close()
        kind = "sqlite"
    else:
        _run(
            [
                _pg_tool("pg_dump"),
                "--format=custom",
                "--no-owner",
                f"--file={partial}",
                f"--dbname={libpq_url(database_url)}",
            ]
        )
        kind = "postgresql"
    partial.replace(output)
    return BackupResult(output, output.stat().st_size, kind)


def _sqlite_has_tables(path: Path) -> bool:
    if not path.exists() or path.stat().st_size == 0:
        return False
    conn = sqlite3.connect(path)
    try:
        row = conn.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()
        return bool(row[0])
    finally:
        conn.close()


def _pg_has_tables(database_url: str) -> bool:
    import psycopg

    with psycopg.connect(libpq_url(database_url)) as conn:
        row = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
    return bool(row and row[0])


def restore(database_url: str, source: Path | str, *, force: bool = False) -> None:
    """Load a backup made by :func:`backup` into the database at ``database_url``."""
    source = Path(source)
    if not source.exists():
        raise BackupError(f"no backup file at {source}")
    if is_sqlite(normalize_url(database_url)):
        target_path = _sqlite_path(database_url)
        if _sqlite_has_tables(target_path) and not force:
            raise BackupError(f"{target_path} already holds data (use --force to overwrite)")
        target_path.parent.mkdir(parents=True, exist_ok=True)
        backup_db = sqlite3.connect(source)
        try:
            target = sqlite3.connect(target_path, timeout=30)
            try:
                backup_db.backup(target)
            finally:
                target.close()
        finally:
            backup_db.close()
        start_new_epoch(database_url)
        return
    if _pg_has_tables(database_url) and not force:
        raise BackupError("the target database already holds tables (use --force to overwrite)")
    command = [
        _pg_tool("pg_restore"),
        "--no-owner",
        "--exit-on-error",
        "--single-transaction",
        f"--dbname={libpq_url(database_url)}",
    ]
    if force:
        command[-1:-1] = ["--clean", "--if-exists"]
    _run([*command, str(source)])
    start_new_epoch(database_url)


def start_new_epoch(database_url: str) -> str:
    """Give the database at ``database_url`` a new epoch (see the module docstring)."""
    from ..db import make_engine
    from ..repository.state import new_epoch

    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            return new_epoch(conn)
    finally:
        engine.dispose()


# ---- command line --------------------------------------------------------------------


def _database_url(explicit: str | None) -> str:
    if explicit:
        return explicit
    from ..settings import Settings

    return Settings().database_url


def cmd_backup(args: argparse.Namespace) -> int:
    try:
        result = backup(_database_url(args.database_url), args.output)
    except BackupError as exc:
        print(f"fieldsync: {exc}")
        return 1
    print(f"{result.kind} backup written to {result.path} ({result.bytes} bytes)")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    try:
        restore(_database_url(args.database_url), args.input, force=args.force)
    except BackupError as exc:
        print(f"fieldsync: {exc}")
        return 1
    print(f"restored {args.input}")
    return 0


def add_backup_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``backup`` and ``restore`` on the ``fieldsync`` command line."""
    b = sub.add_parser("backup", help="write a consistent backup (safe while serving)")
    b.add_argument("--database-url", default=None)
    b.add_argument("--output", required=True, help="backup file to write")
    b.set_defaults(func=cmd_backup)
    r = sub.add_parser("restore", help="load a backup into an empty database")
    r.add_argument("--database-url", default=None)
    r.add_argument("--input", required=True, help="backup file to read")
    r.add_argument("--force", action="store_true", help="overwrite a database holding data")
    r.set_defaults(func=cmd_restore)
