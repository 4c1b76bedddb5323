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
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, text


@dataclass(slots=True)
class SyncCounter:
    counter: int
    purge_horizon: int


def lock_counter(conn: Connection) -> SyncCounter:
    """Start (or join) the writing transaction by locking the counter row."""
    if conn.dialect.name == "postgresql":
        row = conn.execute(
            text("SELECT counter, purge_horizon FROM sync_state WHERE id = 1 FOR UPDATE")
        ).one()
    else:
        conn.execute(text("UPDATE sync_state SET counter = counter WHERE id = 1"))
        row = conn.execute(text("SELECT counter, purge_horizon FROM sync_state WHERE id = 1")).one()
    return SyncCounter(int(row[0]), int(row[1]))


def store_counter(conn: Connection, state: SyncCounter) -> None:
    conn.execute(
        text("UPDATE sync_state SET counter = :c, purge_horizon = :h WHERE id = 1"),
        {"c": state.counter, "h": state.purge_horizon},
    )


def read_counter(conn: Connection) -> SyncCounter:
    """The committed counter, without locking (pulls)."""
    row = conn.execute(text("SELECT counter, purge_horizon FROM sync_state WHERE id = 1")).one()
    return SyncCounter(int(row[0]), int(row[1]))
