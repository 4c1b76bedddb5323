"""Compaction: keep the sync history bounded by the retention windows.

**History, precisely.** The server keeps each record once (``records``, updated in
place), so what grows with every write is not a log of versions but:

* **tombstones** — ``records`` rows with ``deleted = true``, kept so that offline devices
  learn about the delete;
* **evictions** — rows telling a user's devices that a record left their scope;
* **idempotency records** — ``applied_mutations``, one per mutation ever pushed, so a
  retried push answers ``duplicate``.

The *sync history* is ``records`` (live and tombstones) + ``evictions`` +
``applied_mutations``; the *live rows* are the ``records`` rows not deleted (every
collection, conflicts included). The audit log is kept apart, for its own (longer)
retention. Compaction removes, each in chunks of short transactions:

1. tombstones and evictions older than ``tombstone_retention_days`` — each chunk under
   the version-counter lock, raising the purge horizon to the newest version it removed:
   a device whose checkpoint is older is answered ``resync_required`` and syncs afresh
   (keeping its unsent writes);
2. idempotency records older than ``idempotency_retention_days`` — a device retrying a
   push whose answer it lost longer ago than that gets its writes merged again (by HLC
   the same result, except an append-only record, which it gets refused as existing);
3. audit entries older than ``audit_retention_days`` (0 keeps them forever).

After a compaction the history is the live rows plus what the windows still hold.

**Several servers.** :func:`compact_exclusively` takes a PostgreSQL advisory lock for the
run (another instance finding it taken skips its turn); on SQLite the database's single
write lock orders the chunks, and each chunk deletes by condition, so two runs at once
are merely redundant.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, text

from ..repository.state import lock_counter, store_counter
from ..settings import Settings

log = logging.getLogger("fieldsync.compaction")

DAY_MS = 86_400_000
CHUNK = 5_000
#: pg_try_advisory_lock key of compaction ("fscompac").
ADVISORY_KEY = 0x6673636F6D706163


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    tombstone_days: int
    idempotency_days: int
    #: 0: keep the audit log forever.
    audit_days: int

    @classmethod
    def of(cls, settings: Settings) -> RetentionPolicy:
        return cls(
            settings.tombstone_retention_days,
            settings.idempotency_retention_days,
            settings.audit_retention_days,
        )


@dataclass(slots=True)
class CompactionResult:
    tombstones: int = 0
    evictions: int = 0
    idempotency: int = 0
    audit: int = 0
    purge_horizon: int = 0
    seconds: float = 0.0
    #: Another instance held the lock: this run did nothing.
    skipped: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "tombstones": self.tombstones,
            "evictions": self.evictions,
            "idempotency": self.idempotency,
            "audit": self.audit,
            "purge_horizon": self.purge_horizon,
            "seconds": round(self.seconds, 3),
            "skipped": self.skipped,
        }


@dataclass(frozen=True, slots=True)
class HistorySize:
    live: int
    tombstones: int
    evictions: int
    idempotency: int
    audit: int

    @property
    def history(self) -> int:
        """``records`` (live + tombstones) + ``evictions`` + ``applied_mutations``."""
        return self.live + self.tombstones + self.evictions + self.idempotency

    @property
    def ratio(self) -> float:
        return self.history / self.live if self.live else float(self.history)


def history_size(conn: Connection) -> HistorySize:
    """The sizes behind the history ratio (documented in the module docstring)."""

    def count(sql: str) -> int:
        return int(conn.execute(text(sql)).scalar_one())

    return HistorySize(
        live=count("SELECT count(*) FROM records WHERE deleted = false"),
        tombstones=count("SELECT count(*) FROM records WHERE deleted = true"),
        evictions=count("SELECT count(*) FROM evictions"),
        idempotency=count("SELECT count(*) FROM applied_mutations"),
        audit=count("SELECT count(*) FROM audit_log"),
    )


# ---- the steps -----------------------------------------------------------------------------


def _purge_tombstones_chunk(conn: Connection, cutoff_ms: int, chunk: int) -> tuple[int, int, int]:
    """One chunk of tombstones and evictions, oldest versions first, under the counter
    lock: (tombstones, evictions, horizon)."""
    state = lock_counter(conn)
    tomb = conn.execute(
        text(
            "SELECT id, version FROM records WHERE deleted = true AND updated_at_ms < :cutoff "
            "ORDER BY version LIMIT :n"
        ),
        {"cutoff": cutoff_ms, "n": chunk},
    ).all()
    evic = conn.execute(
        text(
            "SELECT id, version FROM evictions WHERE created_at_ms < :cutoff "
            "ORDER BY version LIMIT :n"
        ),
        {"cutoff": cutoff_ms, "n": chunk},
    ).all()
    if tomb:
        conn.execute(text("DELETE FROM records WHERE id = :id"), [{"id": r[0]} for r in tomb])
    if evic:
        conn.execute(text("DELETE FROM evictions WHERE id = :id"), [{"id": r[0]} for r in evic])
    top = max([int(r[1]) for r in tomb] + [int(r[1]) for r in evic] + [state.purge_horizon])
    if top != state.purge_horizon:
        state.purge_horizon = top
        store_counter(conn, state)
    return len(tomb), len(evic), state.purge_horizon


def _delete_chunk(conn: Connection, table: str, column: str, cutoff_ms: int, chunk: int) -> int:
    """Delete up to ``chunk`` rows of ``table`` with ``column < cutoff`` (by physical row
    id: the tables need no particular primary key)."""
    row_id = "ctid" if conn.dialect.name == "postgresql" else "rowid"
    done = conn.execute(
        text(
            f"DELETE FROM {table} WHERE {row_id} IN "
            f"(SELECT {row_id} FROM {table} WHERE {column} < :cutoff LIMIT :n)"
        ),
        {"cutoff": cutoff_ms, "n": chunk},
    )
    return int(done.rowcount or 0)


def _drain(engine: Engine, step: Callable[[Connection], int]) -> int:
    """Run ``step`` in its own transaction until it deletes nothing more."""
    total = 0
    while True:
        with engine.begin() as conn:
            n = step(conn)
        total += n
        if n == 0:
            return total


def compact(
    engine: Engine, policy: RetentionPolicy, *, now_ms: int, chunk: int = CHUNK
) -> CompactionResult:
    """One compaction run (see the module docstring); every step in short transactions."""
    started = time.perf_counter()
    result = CompactionResult()
    cutoff = now_ms - policy.tombstone_days * DAY_MS
    while True:
        with engine.begin() as conn:
            tombstones, evictions, horizon = _purge_tombstones_chunk(conn, cutoff, chunk)
        result.tombstones += tombstones
        result.evictions += evictions
        result.purge_horizon = horizon
        if tombstones < chunk and evictions < chunk:
            break
    keep = now_ms - policy.idempotency_days * DAY_MS
    result.idempotency = _drain(
        engine, lambda c: _delete_chunk(c, "applied_mutations", "created_at_ms", keep, chunk)
    )
    if policy.audit_days > 0:
        old = now_ms - policy.audit_days * DAY_MS
        result.audit = _drain(engine, lambda c: _delete_chunk(c, "audit_log", "at_ms", old, chunk))
    result.seconds = time.perf_counter() - started
    _audit(engine, result, now_ms)
    return result


def _audit(engine: Engine, result: CompactionResult, now_ms: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO audit_log (at_ms, action, details) "
                "VALUES (:at, 'admin.compaction', :details)"
            ),
            {"at": now_ms, "details": json.dumps(result.as_dict())},
        )


def compact_exclusively(
    engine: Engine, policy: RetentionPolicy, *, now_ms: int, chunk: int = CHUNK
) -> CompactionResult:
    """:func:`compact` unless another instance is compacting (PostgreSQL advisory lock)."""
    if engine.dialect.name != "postgresql":
        return compact(engine, policy, now_ms=now_ms, chunk=chunk)
    with engine.connect() as holder:
        got = holder.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_KEY}).scalar()
        holder.commit()
        if not got:
            return CompactionResult(skipped=True)
        try:
            return compact(engine, policy, now_ms=now_ms, chunk=chunk)
        finally:
            holder.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_KEY})
            holder.commit()


def run_compaction(engine: Engine, settings: Settings, metrics: Any) -> CompactionResult:
    """A scheduled (or ``fieldsync maintain``) run: compact, count it, log it."""
    from ..accounts import now_ms

    try:
        result = compact_exclusively(engine, RetentionPolicy.of(settings), now_ms=now_ms())
    except Exception:
        metrics.compaction_runs.labels("error").inc()
        raise
    if result.skipped:
        metrics.compaction_runs.labels("skipped").inc()
        log.info(
            "compaction skipped: another instance is compacting", extra={"event": "compaction"}
        )
        return result
    metrics.compaction_runs.labels("ok").inc()
    for kind in ("tombstones", "evictions", "idempotency", "audit"):
        n = getattr(result, kind)
        if n:
            metrics.compaction_deleted.labels(kind).inc(n)
    metrics.compaction_last_success.set_to_current_time()
    log.info(
        "compaction done",
        extra={"event": "compaction", "deleted": result.as_dict(), "horizon": result.purge_horizon},
    )
    return result
