"""Conflict records (the ``_conflicts`` system collection) opened and resolved by a push."""

from __future__ import annotations

import hashlib
from typing import Any

from sync_protocol import (
    DELETED_FIELD,
    ConflictRecord,
    FieldClock,
    FieldConflict,
    Mutation,
    StoredRecord,
)

from .rows import CONFLICTS, RowState
from .units import Batch


def conflict_id(mutation_id: str, field_name: str, origin: str = "") -> str:
    """The id of the conflict a mutation opens on a field. ``origin`` (user and device)
    keeps two devices' equal mutation ids apart."""
    key = f"{origin}|{mutation_id}|{field_name}" if origin else f"{mutation_id}|{field_name}"
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"cf-{digest[:32]}"


def store_conflict(batch: Batch, m: Mutation, row: RowState, c: FieldConflict) -> str:
    """Open a ``_conflicts`` record for a field a person must decide (part of the unit)."""
    cid = conflict_id(m.id, c.field, batch.origin)
    version = batch.next_version()
    fields = ConflictRecord.of(
        c,
        collection=row.collection,
        record_id=row.record_id,
        device_id=batch.principal.device_id,
        user_id=batch.principal.user_id,
        mutation_id=m.id,
    ).fields()
    hlc = batch.server_hlc()
    record = StoredRecord(fields=fields, clocks={n: FieldClock(hlc, version) for n in fields})
    batch.touch((CONFLICTS, cid))
    batch.rows[(CONFLICTS, cid)] = RowState(
        pk=None,
        collection=CONFLICTS,
        record_id=cid,
        owner_id=row.owner_id,
        customer_id=row.customer_id,
        version=version,
        record=record,
        created_at_ms=batch.now_ms,
        dirty=True,
    )
    return cid


def resolve_conflicts(batch: Batch, m: Mutation, row: RowState) -> None:
    """Mark the conflicts ``m.resolves`` names resolved, with the value ``m`` left."""
    for cid in m.resolves or ():
        conflict = batch.row(CONFLICTS, cid)
        if conflict is None or conflict.record.fields.get("status") != "open":
            continue
        if not batch.principal.sees_owner(conflict.owner_id):
            continue
        batch.touch((CONFLICTS, cid))
        name = conflict.record.fields.get("field")
        value: Any = row.record.deleted if name == DELETED_FIELD else None
        if isinstance(name, str) and name != DELETED_FIELD:
            value = row.record.fields.get(name)
        version = batch.next_version()
        hlc = batch.server_hlc()
        fields = dict(conflict.record.fields)
        fields["status"] = "resolved"
        fields["resolution"] = {
            "by": batch.principal.user_id,
            "device_id": batch.principal.device_id,
            "mutation_id": m.id,
            "value": value,
        }
        clocks = dict(conflict.record.clocks)
        clocks["status"] = clocks["resolution"] = FieldClock(hlc, version)
        conflict.record = StoredRecord(fields=fields, clocks=clocks)
        conflict.version = version
        conflict.dirty = True
