"""Recovering a damaged store file without losing the device's identity or its outbox.

A store file can be damaged by failing flash or a backup tool. Nothing synced exists only
on the device — the server has it — but the **outbox** (pending writes) does. Recovery:

1. open the damaged file without the integrity check and read what is readable: the
   ``meta`` rows (wrapped key, device id, sealed tokens, HLC — but not the checkpoint),
   every outbox row whose ciphertext still authenticates, and the dead letters;
2. move the damaged files aside (``<name>.damaged-<time>``; never deleted silently);
3. write a fresh file holding exactly those rows.

The device keeps its id, key and login, and its pending writes keep their mutation ids
and HLCs, so a write that reached the server before the damage answers ``duplicate``
(exactly once). With no checkpoint, the next ``sync()`` pushes the outbox and re-pulls
everything in scope from the server.
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._errors import StoreError, WrongPassphrase
from .crypto import KdfParams, KeyProvider
from .keys import open_local
from .sqlite import SqliteLocalStore
from .sqlite.connection import SIDE_FILES

#: Meta rows that describe synced state; a recovered store starts over from the server.
_RESET_META = frozenset({"checkpoint", "last_sync_at", "gen", "resync"})
_IDENTITY = ("format", "kdf", "salt", "wrapped_key", "device_id")
_OUTBOX_COLUMNS = (
    "seq, id, collection, record_id, op, base_version, hlc, sent, resolves, created_at, "
    "payload, group_id"
)
_DEAD_COLUMNS = "id, collection, record_id, op, created_at, payload, group_id"


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What :meth:`Store.recover` saved from a damaged file."""

    damaged_path: Path
    identity_kept: bool
    pending_saved: int
    pending_lost: int
    dead_letters_saved: int


def _read(local: SqliteLocalStore, sql: str) -> list[tuple[Any, ...]]:
    try:
        return local.db.query(sql)
    except (StoreError, sqlite3.DatabaseError):
        return []


def _move_aside(path: Path) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%S")
    target = path.with_name(f"{path.name}.damaged-{stamp}")
    for suffix in ("", *SIDE_FILES):
        source = Path(f"{path}{suffix}")
        if source.exists():
            os.replace(source, Path(f"{target}{suffix}"))
    return target


def _salvage(
    path: Path, provider: KeyProvider, kdf: KdfParams
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]], int]:
    """(meta rows, readable outbox rows, dead letter rows, outbox rows lost)."""
    try:
        local, _ = open_local(path, provider, kdf=kdf, check_integrity=False)
    except WrongPassphrase:
        raise  # a wrong passphrase is not damage: never move a healthy file aside
    except StoreError:
        return [], [], [], 0  # the key pages themselves are unreadable
    assert isinstance(local, SqliteLocalStore)
    outbox, lost = [], 0
    try:
        meta = [r for r in _read(local, "SELECT key, value FROM meta") if r[0] not in _RESET_META]
        for row in _read(local, f"SELECT {_OUTBOX_COLUMNS} FROM outbox ORDER BY seq"):
            try:
                local.outbox._decode(row)
            except StoreError:
                lost += 1
                continue
            outbox.append(row)
        dead = _read(local, f"SELECT {_DEAD_COLUMNS} FROM dead_letters")
    finally:
        local.close()
    return meta, outbox, dead, lost


def rebuild(path: str | os.PathLike[str], provider: KeyProvider, kdf: KdfParams) -> RecoveryReport:
    """Move the damaged file at ``path`` aside and write a fresh one with what is readable."""
    path = Path(path)
    meta, outbox, dead, lost = _salvage(path, provider, kdf)
    identity_kept = {k for k, _ in meta} >= set(_IDENTITY)
    damaged = _move_aside(path)
    if identity_kept:
        fresh = SqliteLocalStore(path)
        db = fresh.db
        with db.transaction():
            fresh.create()
            db.conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", meta)
            db.conn.executemany(
                f"INSERT INTO outbox ({_OUTBOX_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", outbox
            )
            db.conn.executemany(
                f"INSERT INTO dead_letters ({_DEAD_COLUMNS}) VALUES (?,?,?,?,?,?,?)", dead
            )
        fresh.close()
    else:
        outbox, dead = [], []
    return RecoveryReport(
        damaged_path=damaged,
        identity_kept=identity_kept,
        pending_saved=len(outbox),
        pending_lost=lost,
        dead_letters_saved=len(dead),
    )
