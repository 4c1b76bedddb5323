"""What leaves the device: the next push batch, and the counts it reports about itself.

One call per request, in one transaction: the batch is taken from the outbox and marked
sent (a sent entry is never coalesced with a later edit, so a retry carries exactly what
the server may already have applied), and the numbers of the ``device_status`` report
are read at the same instant.
"""

from __future__ import annotations

from dataclasses import dataclass

from .._rows import CONFLICTS, LocalCounts, Pending
from .base import LocalStore

#: meta secrets: the run of failed sync attempts, and the device name given at sign-in
HEALTH, DEVICE_NAME = "sync_health", "device_name"


@dataclass(frozen=True, slots=True)
class Outgoing:
    batch: list[Pending]
    counts: LocalCounts
    #: the newest entry a push may take: writes made while it runs wait for the next one
    upto: int


def take_batch(local: LocalStore, limit: int, upto: int | None = None) -> Outgoing:
    """The oldest ``limit`` entries (never cutting a mutation group) up to ``upto`` (the
    newest entry now, when ``None``), marked sent durably before they leave, with the
    counts of the device's report (``pending_count`` includes the batch)."""
    with local.transaction():
        if upto is None:
            upto = local.outbox.summary().last_seq or 0
        batch = [p for p in local.outbox.head(limit) if p.seq <= upto]
        unsent = [p.seq for p in batch if not p.sent]
        if unsent:
            local.outbox.mark_sent(unsent)
        return Outgoing(batch, counts(local), upto)


def counts(local: LocalStore) -> LocalCounts:
    """The numbers a device reports about itself (see :class:`LocalCounts`)."""
    with local.transaction():
        outbox = local.outbox.summary()
        resolving = local.outbox.resolving()
        conflicts = sum(
            1
            for cid, copy in local.records.scan(CONFLICTS)
            if not copy.deleted and copy.fields.get("status") == "open" and cid not in resolving
        )
        health = local.meta.get_secret(HEALTH)
        health = health if isinstance(health, dict) else {}
        return LocalCounts(
            pending_count=outbox.total,
            oldest_created_at=outbox.oldest_created_at,
            dead_letters=local.dead_letters.count(),
            open_conflicts=conflicts,
            failed_attempts=int(health.get("failed_attempts") or 0),
            last_error_code=health.get("last_error_code"),
            last_error_at_ms=health.get("last_error_at_ms"),
            device_name=local.meta.get_secret(DEVICE_NAME),
        )
