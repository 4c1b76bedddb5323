"""Backups from the admin API: ``POST /v1/admin/backups`` writes one into
``Settings.backup_dir``, ``GET`` lists them, ``POST /v1/admin/backups/{name}/restore``
restores one over the live database — the same :func:`server.manager.backup.backup` /
:func:`~server.manager.backup.restore` as ``fieldsync backup`` / ``restore``, so every
restore starts a new sync epoch and phones resync (keeping their unsent writes).

Restoring over the live database from the API: this process answers ``503
service_unavailable`` (``Retry-After``) to every other request while it runs, its
connection pool is emptied before and after, and the restore waits for in-flight
transactions. Other server processes or instances on the same database are not paused:
stop them, or restore with the CLI while the servers are down.
"""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field
from sqlalchemy import Engine, text

from ..background import Pause
from ..db import is_sqlite, normalize_url
from ..errors import NotFound
from ..manager.backup import BackupError, backup, restore
from ..settings import Settings

_NAME = re.compile(r"^fieldsync-\d{8}T\d{6}Z(-\d+)?\.(sqlite|dump)$")


class BackupOut(BaseModel):
    name: str = Field(description="File name inside the server's backup directory.")
    bytes: int
    kind: str = Field(description="`sqlite` or `postgresql`.")
    created_at: datetime


class RestoreOut(BaseModel):
    restored: str
    epoch: str = Field(description="The new sync epoch: every device resyncs.")
    seconds: float


def _folder(settings: Settings) -> Path:
    folder = Path(settings.backup_dir)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _out(path: Path) -> BackupOut:
    stat = path.stat()
    return BackupOut(
        name=path.name,
        bytes=stat.st_size,
        kind="sqlite" if path.suffix == ".sqlite" else "postgresql",
        created_at=datetime.fromtimestamp(stat.st_mtime, UTC),
    )


def list_backups(settings: Settings) -> list[BackupOut]:
    """Newest first."""
    found = [p for p in _folder(settings).iterdir() if _NAME.match(p.name)]
    return [_out(p) for p in sorted(found, key=lambda p: p.name, reverse=True)]


def create_backup(settings: Settings) -> BackupOut:
    suffix = "sqlite" if is_sqlite(normalize_url(settings.database_url)) else "dump"
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    folder = _folder(settings)
    path, n = folder / f"fieldsync-{stamp}.{suffix}", 1
    while path.exists():
        path, n = folder / f"fieldsync-{stamp}-{n}.{suffix}", n + 1
    backup(settings.database_url, path)
    return _out(path)


def backup_path(settings: Settings, name: str) -> Path:
    """The backup called ``name`` (404 for anything else: no path tricks)."""
    path = _folder(settings) / name
    if not _NAME.match(name) or not path.is_file():
        raise NotFound(f"no backup {name!r}", details={"name": name})
    return path


class RestoreGate:
    """While a restore runs, this process turns every other request away (503) and its
    background tasks (search indexer, compaction, webhooks, …) stand still: entering
    waits for a run in progress to end."""

    #: How long a restore waits for a background run in progress before giving up.
    BACKGROUND_WAIT_S = 60.0

    def __init__(self, background: Pause | None = None) -> None:
        self._lock = threading.Lock()
        self.active = False
        self.background = background if background is not None else Pause()

    def __enter__(self) -> RestoreGate:
        if not self._lock.acquire(blocking=False):
            raise BackupError("a restore is already running")
        self.active = True
        if not self.background.hold(self.BACKGROUND_WAIT_S):
            self.active = False
            self._lock.release()
            raise BackupError("a background task did not finish in time; try again")
        return self

    def __exit__(self, *_exc: object) -> None:
        self.background.release()
        self.active = False
        self._lock.release()


def restore_backup(settings: Settings, name: str, gate: RestoreGate, engine: Engine) -> RestoreOut:
    """Restore ``name`` over the live database (see the module docstring)."""
    path = backup_path(settings, name)
    started = time.perf_counter()
    with gate:
        engine.dispose()
        restore(settings.database_url, path, force=True)
        engine.dispose()
    with engine.connect() as conn:
        epoch = str(conn.execute(text("SELECT epoch FROM sync_state WHERE id = 1")).scalar_one())
    return RestoreOut(restored=name, epoch=epoch, seconds=round(time.perf_counter() - started, 3))
