"""What needs a person's attention: conflicts, refused writes (dead letters), status,
and what would be lost if the store were erased now.

Functions behind :class:`~client_sdk.Store`'s methods of the same names; kept apart
because it is the part of the store an app's "sync problems" screen talks to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sync_protocol import ConflictChoice, ConflictRecord, ValidationFailed

from ._core import StoreCore
from ._errors import RecordNotFound
from ._events import ConflictsChanged
from ._models import Conflict, DeadLetter
from ._rows import CONFLICTS
from ._status import SyncStatus, UnsentWork
from ._writes import enqueue, group

#: attachment states whose bytes the server does not hold yet
UNSENT_PHOTO_STATES = ("queued", "uploading", "failed")


# -- conflicts ------------------------------------------------------------------------
def conflicts(core: StoreCore) -> list[Conflict]:
    """Open conflicts not yet resolved on this device, oldest first."""
    with core.lock:
        core.check_usable()
        resolving = core.local.outbox.resolving()
        out = []
        for rec in core.views.scan(CONFLICTS):
            if rec.id in resolving:
                continue
            found = ConflictRecord.read(rec.fields)
            if found is None or found.status != "open":
                continue
            out.append(
                Conflict(
                    id=rec.id,
                    collection=found.collection,
                    record_id=found.record_id,
                    field=found.field,
                    base=found.base,
                    local=found.local,
                    remote=found.remote,
                    local_hlc=found.local_hlc,
                    remote_hlc=found.remote_hlc,
                    device_id=found.device_id,
                    status=found.status,
                )
            )
        out.sort(key=lambda c: (c.local_hlc or "", c.id))
        return out


def resolve_conflict(
    core: StoreCore, conflict_id: str, choice: str | ConflictChoice = "local", value: Any = None
) -> None:
    """Settle a conflict with the local value, the remote value or a new ``value``.

    Writes an ordinary upsert of the record carrying ``resolves=[conflict_id]``; it
    syncs like any write and the server marks the conflict resolved everywhere.
    """
    choice = ConflictChoice(choice)
    with core.lock:
        found = [c for c in conflicts(core) if c.id == conflict_id]
        if not found:
            raise RecordNotFound(f"no open conflict {conflict_id!r}")
        c = found[0]
        chosen = {ConflictChoice.LOCAL: c.local, ConflictChoice.REMOTE: c.remote}.get(choice, value)
        entity = core.schema.get(c.collection)
        if c.field == "_deleted":
            if chosen:
                enqueue(core, c.collection, c.record_id, "delete", {}, resolves=[c.id])
            else:
                current = core.views.view(c.collection, c.record_id)
                fields = dict(current.fields) if current else {}
                if entity is not None:
                    writable = set(entity.writable_fields())
                    fields = {k: v for k, v in fields.items() if k in writable}
                enqueue(core, c.collection, c.record_id, "upsert", fields, resolves=[c.id])
        else:
            if entity is not None and c.field in entity.fields:
                errors = entity.validate({c.field: chosen}, partial=True)
                if errors:
                    raise ValidationFailed("the chosen value is not valid", errors=errors)
            enqueue(core, c.collection, c.record_id, "upsert", {c.field: chosen}, resolves=[c.id])
        remaining = len(conflicts(core))
    core.emit(ConflictsChanged(remaining))


# -- dead letters ---------------------------------------------------------------------
def dead_letters(core: StoreCore) -> list[DeadLetter]:
    with core.lock:
        core.check_usable()
        return [
            DeadLetter(
                id=d.id,
                collection=d.collection,
                record_id=d.record_id,
                op=d.op,
                fields=d.fields,
                error=d.error,
                created_at=d.created_at,
                group=d.group,
            )
            for d in core.local.dead_letters.all()
        ]


def retry_dead_letter(
    core: StoreCore,
    dead_letter_id: str,
    fields: Mapping[str, Any] | None = None,
    override: Sequence[str] | None = None,
) -> None:
    """Queue a refused write again (as a new mutation), optionally with fixed ``fields``
    and overriding soft server checks the user has seen (``["possible_duplicate"]``).

    A write refused as part of a mutation group is queued again *with the other refused
    writes of its group*, in a new group, so the group still applies all or nothing.
    """
    with core.lock:
        letters = dead_letters(core)
        found = [d for d in letters if d.id == dead_letter_id]
        if not found:
            raise RecordNotFound(f"no dead letter {dead_letter_id!r}")
        chosen = found[0]
        together = [d for d in letters if chosen.group is not None and d.group == chosen.group]
        fixes = {chosen.id: dict(fields) if fields is not None else dict(chosen.fields)}
        for d in together or [chosen]:
            new_fields = fixes.get(d.id, dict(d.fields))
            entity = core.schema.get(d.collection)
            if entity is not None and d.op == "upsert":
                errors = entity.validate(new_fields, partial=True)
                if errors:
                    raise ValidationFailed("the write is still not valid", errors=errors)
            fixes[d.id] = new_fields
        with group(core) if together else core.local.transaction():
            for d in together or [chosen]:
                core.local.dead_letters.remove(d.id)
                chosen_override = list(override) if override and d.id == chosen.id else None
                enqueue(
                    core,
                    d.collection,
                    d.record_id,
                    d.op,
                    fixes[d.id],
                    force=True,
                    override=chosen_override,
                )


def discard_dead_letter(core: StoreCore, dead_letter_id: str) -> None:
    with core.lock:
        core.check_usable()
        if not core.local.dead_letters.remove(dead_letter_id):
            raise RecordNotFound(f"no dead letter {dead_letter_id!r}")


# -- status ---------------------------------------------------------------------------
def open_conflict_count(core: StoreCore) -> int:
    resolving = core.local.outbox.resolving()
    return sum(
        1
        for rec in core.views.scan(CONFLICTS)
        if rec.fields.get("status", "open") == "open" and rec.id not in resolving
    )


def status(core: StoreCore) -> SyncStatus:
    with core.lock:
        core.check_open()
        local = core.local
        outbox = local.outbox.summary()
        last_sync = local.meta.get("last_sync_at")
        oldest = outbox.oldest_created_at
        return SyncStatus(
            online=core.online,
            pending_total=outbox.total,
            pending_by_collection=outbox.by_collection,
            oldest_pending_age_s=(
                max(0.0, core.clock.time() - oldest) if oldest is not None else None
            ),
            last_sync_at=float(last_sync) if last_sync else None,
            last_error=local.meta.get_secret("last_error"),
            clock_warning=local.meta.get_secret("clock_warning"),
            open_conflicts=open_conflict_count(core),
            dead_letters=local.dead_letters.count(),
            locked=core.locked,
            revoked=core.revoked,
        )


def unsent_work(core: StoreCore) -> UnsentWork:
    """What erasing the store now would lose (answers even when the store is locked)."""
    with core.lock:
        core.check_open()
        local = core.local
        photos = local.attachments.counts()
        return UnsentWork(
            pending_writes=local.outbox.summary().total,
            rejected_writes=local.dead_letters.count(),
            open_conflicts=open_conflict_count(core),
            unsent_photos=sum(photos.get(s, 0) for s in UNSENT_PHOTO_STATES),
        )
