"""Recovering a damaged store file without losing the device's identity or its outbox.

A store file can be damaged by failing flash or a backup tool. Nothing synced exists only
on the device — the server has it — but the **outbox** (pending writes) does. Recovery:

1. open the damaged file without the integrity check and read what is readable: the
   ``meta`` rows (wrapped key, device id, sealed tokens, HLC — but not the checkpoint),
   every outbox row whose ciphertext still authenticates, and the dead letters;
2. move the damaged files aside (``<name>.damaged-<time>``; never deleted silently);
3. write a fresh file holding exactly those rows and open it.

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
from typing import TYPE_CHECKING, Any

from ._errors import StoreError, WrongPassphrase
from ._storage import SIDE_FILES, SqliteStorage

if TYPE_CHECKING:
    from sync_protocol import SchemaRegistry

    from ._crypto import KeyProvider
    from ._store import Store

#: Meta rows that describe synced state; a recovered store starts over from the server.
_RESET_META = frozenset({"checkpoint", "last_sync_at"})
_IDENTITY = ("format", "kdf", "salt", "wrapped_key", "device_id")
_OUTBOX_COLUMNS = (
    "seq, id, collection, record_id, op, base_version, hlc, sent, resolves, created_at, payload"
)
_DEAD_COLUMNS = "id, collection, record_id, op, created_at, payload"


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What :meth:`Store.recover` saved from a damaged file."""

    damaged_path: Path
    identity_kept: bool
    pending_saved: int
    pending_lost: int
    dead_letters_saved: int


def _read(storage: SqliteStorage, sql: str) -> list[tuple[Any, ...]]:
    try:
        return storage.execute(sql)
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


def recover(
    store_cls: type[Store],
    path: str | os.PathLike[str],
    passphrase: str | KeyProvider,
    *,
    schema: SchemaRegistry,
    **open_kwargs: Any,
) -> tuple[Store, RecoveryReport]:
    path = Path(path)
    meta: list[tuple[Any, ...]] = []
    outbox: list[tuple[Any, ...]] = []
    dead: list[tuple[Any, ...]] = []
    lost = 0
    try:
        old = store_cls.open(path, passphrase, schema=schema, check_integrity=False, **open_kwargs)
    except WrongPassphrase:
        raise  # a wrong passphrase is not damage: never move a healthy file aside
    except StoreError:
        old = None  # the key pages themselves are unreadable: nothing can be decrypted
    if old is not None:
        try:
            storage = old.storage
            assert isinstance(storage, SqliteStorage)
            meta = [
                r for r in _read(storage, "SELECT key, value FROM meta") if r[0] not in _RESET_META
            ]
            for row in _read(storage, f"SELECT {_OUTBOX_COLUMNS} FROM outbox ORDER BY seq"):
                try:
                    old.decode_pending(row)
                except StoreError:
                    lost += 1
                    continue
                outbox.append(row)
            dead = _read(storage, f"SELECT {_DEAD_COLUMNS} FROM dead_letters")
        finally:
            old.close()
    identity_kept = {k for k, _ in meta} >= set(_IDENTITY)
    damaged = _move_aside(path)
    if identity_kept:
        fresh = SqliteStorage(path)
        fresh.create_tables()
        with fresh.transaction() as conn:
            conn.executemany("INSERT INTO meta(key, value) VALUES (?, ?)", meta)
            conn.executemany(
                f"INSERT INTO outbox({_OUTBOX_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)", outbox
            )
            conn.executemany(
                f"INSERT INTO dead_letters({_DEAD_COLUMNS}) VALUES (?,?,?,?,?,?)", dead
            )
        fresh.close()
    else:
        outbox, dead = [], []
    store = store_cls.open(path, passphrase, schema=schema, **open_kwargs)
    report = RecoveryReport(
        damaged_path=damaged,
        identity_kept=identity_kept,
        pending_saved=len(outbox),
        pending_lost=lost,
        dead_letters_saved=len(dead),
    )
    return store, report
