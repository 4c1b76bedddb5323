"""Versions, the visibility horizon, the purge horizon and the epoch.

**The rule every scheme must keep.** A pull returns changes with ``version >
checkpoint`` and then advances the checkpoint. If version 10 could commit *after* a
pull had served version 11, that pull's checkpoint would have moved past 10 and the
device would never see it — a skipped late commit. So :func:`read_counter` answers "the
highest checkpoint a pull may serve right now": a value ``H`` such that every version
``<= H`` that will ever commit has committed and is visible to any snapshot taken after
the call returns. (Callers read their rows in a *later* statement — READ COMMITTED
takes a fresh snapshot per statement.)

**SQLite: one locked counter.** SQLite has one writer at a time anyway. Every writing
transaction begins with ``UPDATE sync_state SET counter = counter`` (taking the
database's write lock), allocates versions from the row's counter and writes the new
value back before committing. Versions become visible strictly in order and ``H`` is
simply the committed counter.

**PostgreSQL: a sequence plus an in-flight horizon — writers do not serialise.** A
single locked row would serialise every push of the installation (all instances) for
its whole duration. Instead:

* versions come from the sequence ``fieldsync_versions`` (``nextval``, never rolled
  back: an aborted batch leaves a gap, which a pull does not mind);
* a writing transaction first calls ``fieldsync_begin_write(exclusive)``, which (1)
  takes the *writer gate* — advisory transaction lock ``-1``, shared by pushes,
  exclusive for the rare writers that need everything else to stand still
  (:func:`lock_counter`: reassignment, team moves, compaction, manager edits that check
  a precondition first) — then (2) reads ``m``, the sequence's last value, and (3)
  takes a shared advisory transaction lock with key ``m`` (its *mark*). Every version
  the transaction takes afterwards is ``> m``. The mark is released by the lock
  manager at commit or abort — after the commit became visible (PostgreSQL ends a
  transaction in the proc array before it releases its locks);
* :func:`read_counter` calls ``fieldsync_visible_version()``: ``top`` := the sequence's
  last value, *then* ``held`` := the smallest mark in ``pg_locks`` of this database,
  and answers ``H = min(top, held)`` (``top`` when no writer is in flight).

*Why no late commit is skipped.* Take a version ``v <= H`` handed out to writer ``W``.
``v <= top`` means ``nextval`` gave ``v`` out before ``top`` was read. ``W`` took its mark
``m_W < v`` before that ``nextval``, so the mark was held before ``top`` was read and
therefore before ``pg_locks`` was read. Were ``W`` still in flight then, ``held <= m_W <
v`` and so ``H < v`` — a contradiction. So ``W`` had ended (committed and visible, or
aborted) before the call returned. ``pg_locks`` and sequences are outside MVCC, so the
order of the two reads is real time, not snapshot time; and both reads happen inside
one plpgsql function, in that order.

*What it costs.* A push takes two shared advisory locks (no shared row, no
``FOR UPDATE``; ``tests/server/test_counter_pg.py`` has two transactions allocating
versions side by side without waiting) and a block of versions from the sequence in
one round trip. A pull reads ``pg_locks`` once — a consistent snapshot of the lock
table, cheap with a few hundred connections. A pull never serves past the oldest
in-flight writer: a transaction held open for a minute (none of Fieldsync's are)
holds every pull's horizon for that minute, exactly as the locked row made every
*writer* wait before. Pushes no longer exclude each other, so a push reads records
without locks and writes them optimistically (``WHERE version =`` what it read;
:mod:`.writing`), applying the batch again when another transaction got there first.

**The purge horizon** (compaction) and **the epoch** live in the one-row ``sync_state``
table and change only under the exclusive gate (PostgreSQL) / the write lock (SQLite).
Versions only mean something within one history of the database: a restore from a
backup rewinds them, so every restore starts a new random ``epoch`` (:func:`new_epoch`),
checkpoints carry it, and a pull with another epoch's checkpoint answers
``resync_required``. ``"0"`` is the epoch of a database that was never restored.
On PostgreSQL ``sync_state.counter`` is kept equal to the sequence by the exclusive
writers and :func:`set_counter` only; read versions with :func:`read_counter`.
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
#: PostgreSQL: the sequence versions come from (migration 0014).
SEQUENCE = "fieldsync_versions"
_SELECT = "SELECT counter, purge_horizon, epoch FROM sync_state WHERE id = 1"
_PG_READ = "SELECT fieldsync_visible_version(), purge_horizon, epoch FROM sync_state WHERE id = 1"
_AUTH = ", (SELECT generation FROM auth_state WHERE id = 1)"


@dataclass(slots=True)
class SyncCounter:
    counter: int
    purge_horizon: int
    epoch: str = INITIAL_EPOCH
    #: Bumped by every revocation (``auth_state``); read with ``read_counter(auth=True)``.
    auth_generation: int = 0


def _state(row: tuple[object, ...]) -> SyncCounter:
    state = SyncCounter(int(str(row[0])), int(str(row[1])), str(row[2]))
    if len(row) > 3:
        state.auth_generation = int(str(row[3] or 0))
    return state


def _postgres(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def lock_counter(conn: Connection) -> SyncCounter:
    """Start (or join) a writing transaction that excludes every other writer until it
    commits: reassignment, team moves, compaction, manager edits that check a
    precondition and then write. Allocate versions by incrementing ``.counter`` and
    call :func:`store_counter`. Pushes use :func:`begin_write` instead."""
    conn.info[WROTE] = True
    if _postgres(conn):
        conn.execute(text("SELECT fieldsync_begin_write(true)"))
        row = conn.execute(
            text(
                f"SELECT coalesce(pg_sequence_last_value('{SEQUENCE}'), 0), purge_horizon, "
                "epoch FROM sync_state WHERE id = 1 FOR UPDATE"
            )
        ).one()
        return _state(tuple(row))
    conn.execute(text("UPDATE sync_state SET counter = counter WHERE id = 1"))
    return _state(tuple(conn.execute(text(_SELECT)).one()))


def begin_write(conn: Connection) -> None:
    """Start (or join) a push's writing transaction. SQLite: the write lock, as
    :func:`lock_counter`. PostgreSQL: the shared writer gate and this transaction's
    mark — concurrent pushes do not wait for each other. Take versions with
    :class:`Versions`."""
    conn.info[WROTE] = True
    if _postgres(conn):
        conn.execute(text("SELECT fieldsync_begin_write(false)"))
    else:
        conn.execute(text("UPDATE sync_state SET counter = counter WHERE id = 1"))


class Versions:
    """Increasing versions for one writing transaction (after :func:`begin_write`).

    SQLite: counted on from the locked counter and stored back by :meth:`finish`.
    PostgreSQL: taken from the sequence in blocks (``nextval``; an unused rest of a
    block is a gap). :meth:`rewind` gives back versions handed out since a point (a
    rejected unit), which are handed out again."""

    def __init__(self, conn: Connection, *, hint: int = 0) -> None:
        self.conn = conn
        self._postgres = _postgres(conn)
        self._hint = max(hint, 1)
        if self._postgres:
            self.start = 0
            self._pool: list[int] = []
        else:
            self.start = int(
                conn.execute(text("SELECT counter FROM sync_state WHERE id = 1")).scalar_one()
            )
        #: The last version handed out (``start`` before the first).
        self.last = self.start
        self._used = 0

    def peek(self) -> int:
        """The version :meth:`take` returns next."""
        if not self._postgres:
            return self.last + 1
        if self._used == len(self._pool):
            more = max(self._hint, len(self._pool))
            self._pool += sorted(
                int(v)
                for v in self.conn.execute(
                    text(f"SELECT nextval('{SEQUENCE}') FROM generate_series(1, :n)"),
                    {"n": more},
                ).scalars()
            )
        return self._pool[self._used]

    def take(self) -> int:
        version = self.peek()
        self._used += 1
        self.last = version
        return version

    def rewind(self, last: int) -> None:
        """Hand out again every version greater than ``last`` (a rolled-back unit)."""
        if self._postgres:
            while self._used and self._pool[self._used - 1] > last:
                self._used -= 1
        self.last = last

    def finish(self) -> None:
        """SQLite: store the counter (before commit). PostgreSQL: nothing to do."""
        if not self._postgres and self.last != self.start:
            self.conn.execute(
                text("UPDATE sync_state SET counter = :c WHERE id = 1"), {"c": self.last}
            )


def store_counter(conn: Connection, state: SyncCounter) -> None:
    """After :func:`lock_counter`: store the counter and the purge horizon."""
    if _postgres(conn):
        conn.execute(
            text(f"SELECT setval('{SEQUENCE}', greatest(:c, nextval('{SEQUENCE}') - 1))"),
            {"c": state.counter},
        )
    conn.execute(
        text("UPDATE sync_state SET counter = :c, purge_horizon = :h WHERE id = 1"),
        {"c": state.counter, "h": state.purge_horizon},
    )


def set_counter(conn: Connection, value: int) -> None:
    """Declare ``value`` the highest version in use — after rows were loaded with
    versions by hand (bench and test seeding, bulk loads). Nothing may be writing."""
    if _postgres(conn):
        conn.execute(text(f"SELECT setval('{SEQUENCE}', :v)"), {"v": value})
    conn.execute(text("UPDATE sync_state SET counter = :v WHERE id = 1"), {"v": value})


def read_counter(conn: Connection, *, auth: bool = False) -> SyncCounter:
    """The highest checkpoint a pull may serve right now (see the module docstring),
    with the purge horizon and the epoch; with ``auth=True`` also the auth generation,
    in the same statement. Read the rows to serve in a later statement."""
    sql = _PG_READ if _postgres(conn) else _SELECT
    if auth:
        sql = sql.replace(" FROM sync_state", _AUTH + " FROM sync_state", 1)
    return _state(tuple(conn.execute(text(sql)).one()))


def _auth_sql(postgres: bool) -> str:
    return (_PG_READ if postgres else _SELECT).replace(
        " FROM sync_state", _AUTH + " FROM sync_state", 1
    )


def read_counter_dbapi(cursor: Any, dialect: str) -> SyncCounter:
    """:func:`read_counter` with the auth generation on a bare DB-API cursor of
    ``dialect`` (``sqlite``/``postgresql``; no parameters) — the pull path without
    SQLAlchemy's per-statement work."""
    cursor.execute(_auth_sql(dialect == "postgresql"))
    row = cursor.fetchone()
    if row is None:
        raise RuntimeError("sync_state has no row")
    return _state(tuple(row))


async def read_counter_async(cursor: Any) -> SyncCounter:
    """:func:`read_counter_dbapi` on psycopg's async cursor (the poll on PostgreSQL, on
    the event loop: :class:`~.pull.LoopReader`)."""
    await cursor.execute(_auth_sql(True))
    row = await cursor.fetchone()
    if row is None:
        raise RuntimeError("sync_state has no row")
    return _state(tuple(row))


def new_epoch(conn: Connection) -> str:
    """Start a new history (after a restore): every checkpoint handed out before is
    answered ``resync_required`` from now on. Returns the new epoch."""
    epoch = secrets.token_hex(6)
    conn.info[WROTE] = True
    conn.execute(text("UPDATE sync_state SET epoch = :e WHERE id = 1"), {"e": epoch})
    return epoch
