"""Executing the engine's plans against a local store, each in one transaction.

The engine (:mod:`client_sdk._engine`) decides what a push answer or a pull page means;
this module carries that out over the :class:`~.base.LocalStore` tables, atomically: a
crash leaves either the whole answer or page applied (with its checkpoint) or none of it.
It decides nothing itself. The search index (:mod:`.views`) is updated inside the same
transaction, so it never disagrees with the records after a crash.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .._engine.pull import EVICT, PUT, REMOVE, TOMBSTONE, PagePlan
from .._engine.responses import PushPlan
from .._rows import CONFLICTS, ServerCopy
from .base import CopyRow, LocalStore
from .batches import HEALTH

if TYPE_CHECKING:
    from .views import Views

_GEN, _CHECKPOINT, _RESYNC, _HLC = "gen", "checkpoint", "resync", "hlc"
CLOCK_WARNING, LAST_ERROR, LAST_SYNC_AT = "clock_warning", "last_error", "last_sync_at"


def generation(local: LocalStore) -> int:
    raw = local.meta.get(_GEN)
    return int(raw) if raw else 0


def apply_push(
    local: LocalStore,
    plan: PushPlan,
    *,
    at: float,
    hlc: str | None,
    views: Views | None = None,
) -> None:
    """Fold an answered push batch into the store (see :mod:`client_sdk._engine.push`),
    and re-index the views of the records it touched."""
    with local.transaction():
        gen = generation(local)
        records = local.records
        for ack in plan.acks:
            p = ack.entry
            if ack.copy == "drop":
                records.remove(p.collection, p.record_id)
            elif ack.copy is not None:
                old = records.get(p.collection, p.record_id)
                version = ack.version if ack.version is not None else (old.version if old else None)
                base = old.fields if old is not None and not old.deleted else {}
                fields = dict(ack.fields or {})
                if ack.copy == "patch":
                    fields = {**base, **fields}
                records.put(p.collection, p.record_id, ServerCopy(fields, version), gen)
            for cid in p.resolves or ():
                conflict = records.get(CONFLICTS, cid)
                if conflict is not None:
                    conflict.fields["status"] = "resolved"
                    records.put(CONFLICTS, cid, conflict, gen)
        for reject in plan.rejects:
            local.dead_letters.add(reject.entry, reject.error, at)
        local.outbox.remove([a.entry.seq for a in plan.acks] + [r.entry.seq for r in plan.rejects])
        if hlc is not None:
            local.meta.set(_HLC, hlc.encode())
        if plan.answered:  # the server's word on the device clock, for the status screen
            local.meta.set_secret(CLOCK_WARNING, plan.clock_warning)
        if views is not None:
            touched: dict[str, set[str]] = {}
            for p in [a.entry for a in plan.acks] + [r.entry for r in plan.rejects]:
                touched.setdefault(p.collection, set()).add(p.record_id)
                if p.resolves:
                    touched.setdefault(CONFLICTS, set()).update(p.resolves)
            for collection, ids in touched.items():
                views.refresh(collection, ids)


@dataclass(slots=True)
class PageOutcome:
    dead_lettered: int = 0


def apply_page(
    local: LocalStore,
    plan: PagePlan,
    *,
    at: float,
    hlc: str | None,
    views: Views | None = None,
) -> PageOutcome:
    """Apply one pull page and store its checkpoint (see :mod:`client_sdk._engine.pull`),
    and bring the search index up to date with it."""
    out = PageOutcome()
    with local.transaction():
        gen = generation(local)
        records = local.records
        if plan.only_puts:
            records.put_many(((c, rid, v, f, raw) for c, rid, v, _, f, raw in plan.changes), gen)
        puts: list[CopyRow] = []
        for kind, ch in plan.ops if not plan.only_puts else ():
            if kind == PUT:
                puts.append((ch.collection, ch.record_id, ch.version, ch.fields, ch.raw))
                continue
            if puts:
                records.put_many(puts, gen)
                puts = []
            if kind == TOMBSTONE:
                records.mark_deleted(ch.collection, ch.record_id, ch.version, gen)
            elif kind in (REMOVE, EVICT):
                records.remove(ch.collection, ch.record_id)
            if kind == EVICT:
                waiting = local.outbox.entries(ch.collection, ch.record_id)
                for p in waiting:
                    local.dead_letters.add(p, plan.eviction_error, at)
                local.outbox.remove(p.seq for p in waiting)
                out.dead_lettered += len(waiting)
        if puts:
            records.put_many(puts, gen)
        local.meta.set(_CHECKPOINT, plan.checkpoint.encode())
        if hlc is not None:
            local.meta.set(_HLC, hlc.encode())
        if views is not None:
            views.after_page(plan)
    return out


def finish_run(local: LocalStore, at: float) -> str | None:
    """A sync run succeeded at ``at``: clear its error state; returns the checkpoint."""
    with local.transaction():
        local.meta.set(LAST_SYNC_AT, repr(at).encode())
        local.meta.set_secret(LAST_ERROR, None)
        local.meta.set_secret(HEALTH, None)
        return checkpoint(local)


def checkpoint(local: LocalStore) -> str | None:
    raw = local.meta.get(_CHECKPOINT)
    return raw.decode() if raw is not None else None


def begin_resync(local: LocalStore) -> None:
    """Forget the checkpoint and start a new generation of server copies."""
    with local.transaction():
        local.meta.set(_GEN, str(generation(local) + 1).encode())
        local.meta.set(_CHECKPOINT, None)
        local.meta.set(_RESYNC, b"1")


def finish_resync(local: LocalStore) -> int:
    """After a full re-pull: drop server copies the server did not send again (those
    with local writes waiting are kept). Returns how many were dropped."""
    with local.transaction():
        if local.meta.get(_RESYNC) != b"1":
            return 0
        dropped = local.records.drop_older(generation(local), local.outbox.keys())
        local.meta.set(_RESYNC, None)
        return dropped


def reset_replica(local: LocalStore) -> None:
    """Forget everything synced and pending (a different user signed in on the store)."""
    with local.transaction():
        local.records.clear()
        local.outbox.clear()
        local.dead_letters.clear()
        local.meta.set(_CHECKPOINT, None)
        local.meta.set(_RESYNC, None)
