"""The one-row ``sync_state`` table: the version counter and the purge horizon.

**Why a locked counter.** A pull returns changes with ``version > checkpoint`` and then
advances the checkpoint. If versions came from a free-running sequence, transaction A
could take version 10, transaction B version 11 and commit first; a pull in between
would see 11, move its checkpoint to 11, and never see 10 when A commits. Here every
writing transaction first locks the counter row (``SELECT … FOR UPDATE`` on PostgreSQL;
on SQLite the first statement is an ``UPDATE``, which takes the database's single write
lock), allocates its versions from it, and writes the new value back before committing.
Versions therefore become visible strictly in order, and a puller that reads the
committed counter ``H`` can serve everything up to ``H`` knowing nothing at or below it
is still in flight. The cost is that writers serialise on that row — they do on SQLite
anyway — which at ~1 ms per 100-mutation batch is far from the bottleneck.

**The epoch.** Versions only mean something within one history of the database. A
restore from a backup rewinds the counter, so the same numbers get handed out again to
different changes; a device holding a checkpoint of the old history would silently
miss them. Every restore therefore starts a new random ``epoch`` (:func:`new_epoch`),
checkpoints carry it, and a pull with another epoch's checkpoint answers
``resync_required``. ``"0"`` is the epoch of a database that was never restored.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

#: The epoch of a database that has never been restored.
INITIAL_EPOCH = "0"
#: Set in a connection's ``info`` by every writing transaction: when the connection
#: goes back to the pool (after its commit) :mod:`server.live` announces a change.
WROTE = "fieldsync.wrote"
_SELECT = "SELECT counter, purge_horizon, epoch FROM sync_state WHERE id = 1"
#: The same row and the auth generation (``auth_state``, migration 0012), one statement.
_SELECT_AUTH = (
    "SELECT counter, purge_horizon, epoch, "
    "(SELECT generation FROM auth_state WHERE id = 1) FROM sync_state WHERE id = 1"
)


@dataclass(slots=True)
class SyncCounter:
    counter: int
    purge_horizon: int
    epoch: str = INITIAL_EPOCH
    #: ``auth_state.generation`` when read with ``auth=True`` (:mod:`server.authcache`).
    auth_generation: int = 0


def _state(row: tuple[object, ...]) -> SyncCounter:
    return SyncCounter(int(str(row[0])), int(str(row[1])), str(row[2]))


def lock_counter(conn: Connection) -> SyncCounter:
    """Start (or join) the writing transaction by locking the counter row."""
    conn.info[WROTE] = True
    if conn.dialect.name == "postgresql":
        row = conn.execute(text(_SELECT + " FOR UPDATE")).one()
    else:
        conn.execute(text("UPDATE sync_state SET counter = counter WHERE id = 1"))
        row = conn.execute(text(_SELECT)).one()
    return _state(tuple(row))


def begin_write(conn: Connection) -> SyncCounter:
    """Start (or join) a push's writing transaction."""
    return lock_counter(conn)


def store_counter(conn: Connection, state: SyncCounter) -> None:
    conn.execute(
        text("UPDATE sync_state SET counter = :c, purge_horizon = :h WHERE id = 1"),
        {"c": state.counter, "h": state.purge_horizon},
    )


def read_counter(conn: Connection, *, auth: bool = False) -> SyncCounter:
    """The committed counter, without locking (pulls). ``auth=True`` also reads the auth
    generation in the same statement (the poll path: one round trip)."""
    if not auth:
        return _state(tuple(conn.execute(text(_SELECT)).one()))
    return _with_auth(tuple(conn.execute(text(_SELECT_AUTH)).one()))


def read_counter_dbapi(cursor: Any, dialect: str) -> SyncCounter:
    """:func:`read_counter` with the auth generation on a bare DB-API cursor of
    ``dialect`` (``sqlite``/``postgresql``; no parameters) — the pull path without
    SQLAlchemy's per-statement work."""
    cursor.execute(_SELECT_AUTH)
    row = cursor.fetchone()
    if row is None:
        raise RuntimeError("sync_state has no row")
    return _with_auth(tuple(row))


async def read_counter_async(cursor: Any) -> SyncCounter:
    """:func:`read_counter_dbapi` on psycopg's async cursor (the poll on PostgreSQL, on
    the event loop: :class:`~.pull.LoopReader`)."""
    await cursor.execute(_SELECT_AUTH)
    row = await cursor.fetchone()
    if row is None:
        raise RuntimeError("sync_state has no row")
    return _with_auth(tuple(row))


def _with_auth(row: tuple[object, ...]) -> SyncCounter:
    state = _state(row)
    state.auth_generation = int(str(row[3]))
    return state


def new_epoch(conn: Connection) -> str:
    """Start a new history (after a restore): every checkpoint handed out before is
    answered ``resync_required`` from now on. Returns the new epoch."""
    epoch = secrets.token_hex(6)
    conn.info[WROTE] = True
    conn.execute(text("UPDATE sync_state SET epoch = :e WHERE id = 1"), {"e": epoch})
    return epoch
