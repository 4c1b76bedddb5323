"""The field-level three-way merge.

Pure functions, no I/O: the server calls :func:`merge_record` for every pushed mutation
and stores what it returns. The inputs are

* ``base``   — the values of the changed fields as the device last saw them from the
  server (``Mutation.base``), with the record version they came from
  (``Mutation.base_version``);
* ``local``  — the device's edit (:class:`LocalEdit`): op, changed fields, HLC;
* ``remote`` — the record as the server holds it now (:class:`StoredRecord`), with a
  :class:`FieldClock` per field: the HLC of the write that set it and the server version
  at which it changed.

A field of the edit is *concurrent* with the server when the server changed it after the
device's base (``clock.version > base_version``) — unless the server's value is the
device's **own earlier write** (same HLC node, smaller or equal HLC): a device's queued
edits all carry the same stale ``base_version``, yet each one was made on top of the one
before, so they follow each other causally. An edit that is *older* than the device's
own write already stored arrives late and is superseded. A non-concurrent edit causally
follows what the server holds and simply applies. A concurrent one is settled by the
field's :class:`~sync_protocol.schema.MergePolicy`. For ``lww`` the rule is "greater HLC
wins" whatever the arrival order, so replicas converge however deliveries are ordered.

The field clock a merge stamps always tells the truth about who wrote the value: the
writer's HLC when the stored value is exactly one device's write, and an HLC on the
pseudo-node :data:`MERGE_NODE` when the value combines several writes (a union or an
append of both sides) — so the own-write rule never mistakes a combined value for one
device's own.

Delete versus edit follows the entity's :class:`~sync_protocol.schema.DeletePolicy` and
reaches the same outcome in both arrival orders:

* ``edit_wins``   — the record is alive with the edit; the delete is superseded;
* ``delete_wins`` — the record is deleted; the edited values are kept in conflicts;
* ``manual``      — the record is alive with the edit, and a ``_deleted`` conflict asks
  a person whether to delete it.

Nothing is silently lost: every local value either lands, is superseded by a write later
in HLC order (``lww``) or by the declared policy (``server_wins``, ``max``), is combined
(``union``, ``append``), or is kept in a :class:`FieldConflict` for a person to decide.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any, Literal

from .hlc import Timestamp
from .policies import greater, merge_append, merge_union
from .schema import DeletePolicy, EntitySchema, FieldSpec, MergePolicy

__all__ = [
    "DELETED_FIELD",
    "MERGE_NODE",
    "FieldClock",
    "FieldConflict",
    "LocalEdit",
    "MergeResult",
    "MergeStatus",
    "StoredRecord",
    "merge_append",
    "merge_record",
    "merge_union",
    "resolve_conflict_value",
]

#: Pseudo-field naming a delete-versus-edit conflict in :class:`FieldConflict`. Its
#: ``base``/``local``/``remote`` values are booleans: "is the record deleted on that side".
DELETED_FIELD = "_deleted"

#: HLC node stamped on a value that combines several writers' values (union, append).
#: ``~`` is outside the device-id alphabet, so it never equals a device's node.
MERGE_NODE = "~merged"


@dataclass(frozen=True, slots=True)
class FieldClock:
    """When a field last changed: the writer's HLC and the server version."""

    hlc: str
    version: int


@dataclass(slots=True)
class StoredRecord:
    """A record as the server holds it.

    A deleted record keeps its ``fields`` (a tombstone): a later restore brings them
    back, and a ``delete_wins`` conflict can still show what was edited.
    """

    fields: dict[str, Any]
    clocks: dict[str, FieldClock]
    deleted: bool = False
    deleted_clock: FieldClock | None = None

    def copy(self) -> StoredRecord:
        return StoredRecord(
            fields=copy.deepcopy(self.fields),
            clocks=dict(self.clocks),
            deleted=self.deleted,
            deleted_clock=self.deleted_clock,
        )

    @property
    def last_version(self) -> int:
        versions = [c.version for c in self.clocks.values()]
        if self.deleted_clock:
            versions.append(self.deleted_clock.version)
        return max(versions, default=0)


@dataclass(frozen=True, slots=True)
class LocalEdit:
    """A device's write, as carried by a ``Mutation``."""

    op: Literal["upsert", "delete"]
    fields: Mapping[str, Any]
    hlc: str
    base_version: int | None = None
    base: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class FieldConflict:
    """A concurrent write a person must decide; the server kept ``remote``.

    For ``field == DELETED_FIELD`` the values are booleans (record deleted on that side).
    """

    field: str
    base: Any
    local: Any
    remote: Any
    local_hlc: str
    remote_hlc: str | None


class MergeStatus(StrEnum):
    APPLIED = "applied"  # everything the device sent landed as sent
    MERGED = "merged"  # the result combines the device's and the server's writes
    CONFLICT = "conflict"  # at least one field awaits a person
    UNCHANGED = "unchanged"  # the edit changed nothing (e.g. superseded entirely)


@dataclass(slots=True)
class MergeResult:
    record: StoredRecord
    status: MergeStatus
    changed: set[str] = field(default_factory=set)
    conflicts: list[FieldConflict] = field(default_factory=list)
    #: Fields whose local value was superseded (by a later HLC or by policy).
    superseded: set[str] = field(default_factory=set)
    #: The record's existence changed (created, deleted or restored).
    existence_changed: bool = False


class _Writer(Enum):
    """How a stored clock relates to the incoming edit's device."""

    OTHER = "other"  # another device (or a merge) wrote it
    OWN_EARLIER = "own_earlier"  # this device, before this edit: the edit follows it
    OWN_LATER = "own_later"  # this device, after this edit: the edit arrives late


def _node(hlc: str) -> str:
    parts = hlc.split(":", 2)
    return parts[2] if len(parts) == 3 else ""


def _writer(stored_hlc: str, local_hlc: str) -> _Writer:
    if _node(stored_hlc) != _node(local_hlc) or not _node(local_hlc):
        return _Writer.OTHER
    return _Writer.OWN_LATER if stored_hlc > local_hlc else _Writer.OWN_EARLIER


def _merged_hlc(a: str, b: str) -> str:
    """An HLC at the later of ``a`` and ``b`` on :data:`MERGE_NODE`."""
    top = max(a, b)
    try:
        ts = Timestamp.parse(top)
    except ValueError:
        return top
    return Timestamp(ts.wall_ms, ts.counter, MERGE_NODE).encode()


_MISSING: Any = object()


def merge_record(
    schema: EntitySchema,
    base: Mapping[str, Any] | None,
    local: LocalEdit,
    remote: StoredRecord | None,
    *,
    new_version: int,
) -> MergeResult:
    """Merge one device edit into the server's record, field by field.

    ``new_version`` is the server version stamped on every field this merge changes.
    ``remote=None`` means the server has never held the record. The inputs are not
    modified. The result is deterministic in its inputs.
    """
    base_version = local.base_version or 0
    base_values: Mapping[str, Any] = base if base is not None else (local.base or {})

    if remote is None:
        if local.op == "delete":
            # Deleting what the server never had: remember the tombstone so a late
            # create of the same id is recognised as concurrent with the delete.
            rec = StoredRecord(
                fields={}, clocks={}, deleted=True, deleted_clock=FieldClock(local.hlc, new_version)
            )
            return MergeResult(rec, MergeStatus.APPLIED, existence_changed=True)
        rec = StoredRecord(
            fields=copy.deepcopy(dict(local.fields)),
            clocks={n: FieldClock(local.hlc, new_version) for n in local.fields},
        )
        return MergeResult(
            rec, MergeStatus.APPLIED, changed=set(local.fields), existence_changed=True
        )

    if local.op == "delete":
        return _merge_delete(schema, local, remote, base_version, new_version)

    if remote.deleted:
        return _merge_into_deleted(schema, base_values, local, remote, base_version, new_version)
    out = MergeResult(remote.copy(), MergeStatus.APPLIED)
    _merge_fields(out, schema, base_values, local, remote, base_version, new_version)
    return _settle(out)


def _merge_fields(
    out: MergeResult,
    schema: EntitySchema,
    base_values: Mapping[str, Any],
    local: LocalEdit,
    remote: StoredRecord,
    base_version: int,
    new_version: int,
) -> None:
    """Merge each field of an upsert into ``out.record`` (a copy of ``remote``)."""
    for name, local_value in local.fields.items():
        spec = schema.fields.get(name)
        clock = remote.clocks.get(name)
        remote_value = remote.fields.get(name, _MISSING)
        if clock is None or remote_value is _MISSING:
            # The server never held this field: nothing to be concurrent with.
            _set(out, name, local_value, local.hlc, new_version)
            continue
        policy = spec.merge if spec else MergePolicy.LWW
        writer = _writer(clock.hlc, local.hlc)
        if writer is _Writer.OWN_LATER and policy is not MergePolicy.MAX:
            # A newer write of this device already landed; this one arrives late.
            if remote_value != local_value:
                out.superseded.add(name)
            continue
        concurrent = clock.version > base_version and (
            writer is _Writer.OTHER or policy is MergePolicy.MAX
        )
        if not concurrent:
            if remote_value != local_value:
                _set(out, name, local_value, local.hlc, new_version)
            continue
        _merge_concurrent(
            out,
            spec,
            policy,
            name,
            base_values.get(name),
            local_value,
            remote_value,
            local.hlc,
            clock,
            new_version,
        )


def _settle(out: MergeResult) -> MergeResult:
    if out.conflicts:
        out.status = MergeStatus.CONFLICT
    elif out.status is MergeStatus.APPLIED and out.superseded:
        out.status = MergeStatus.MERGED if out.changed else MergeStatus.UNCHANGED
    elif out.status is MergeStatus.APPLIED and not out.changed and not out.existence_changed:
        out.status = MergeStatus.UNCHANGED
    return out


def _merge_into_deleted(
    schema: EntitySchema,
    base_values: Mapping[str, Any],
    local: LocalEdit,
    remote: StoredRecord,
    base_version: int,
    new_version: int,
) -> MergeResult:
    """An upsert of a deleted record: a re-create, or an edit concurrent with the delete.

    The edit is first merged into the tombstone's fields as if the record were alive.
    An edit that would change nothing there (it lost every field to later writes) does
    not resurrect the record — so the outcome does not depend on whether it arrived
    before or after the delete. Otherwise the entity's delete policy decides.
    """
    dc = remote.deleted_clock
    writer = _writer(dc.hlc, local.hlc) if dc else _Writer.OTHER
    out = MergeResult(remote.copy(), MergeStatus.APPLIED)
    if writer is _Writer.OWN_LATER:
        # The device deleted the record after making this edit: the edit is stale.
        out.superseded.update(local.fields)
        out.status = MergeStatus.UNCHANGED
        return out
    concurrent = dc is not None and dc.version > base_version and writer is _Writer.OTHER
    _merge_fields(out, schema, base_values, local, remote, base_version, new_version)
    if not concurrent:
        # The device saw the delete and wrote the record again: a re-create.
        out.record.deleted = False
        out.record.deleted_clock = None
        out.existence_changed = True
        return _settle(out)
    remote_hlc = dc.hlc if dc else None
    effective = sorted(out.changed | {c.field for c in out.conflicts})
    if not effective:
        result = MergeResult(remote.copy(), MergeStatus.MERGED, superseded=set(local.fields))
        if not out.superseded:
            result.status = MergeStatus.UNCHANGED
        return result
    if schema.delete_policy is DeletePolicy.DELETE_WINS:
        # The record stays deleted; the edit waits in conflict records.
        conflicts = [
            FieldConflict(
                name,
                copy.deepcopy(base_values.get(name)),
                copy.deepcopy(local.fields[name]),
                copy.deepcopy(remote.fields.get(name)),
                local.hlc,
                remote.clocks[name].hlc if name in remote.clocks else None,
            )
            for name in effective
        ]
        conflicts.append(FieldConflict(DELETED_FIELD, False, False, True, local.hlc, remote_hlc))
        return MergeResult(
            remote.copy(), MergeStatus.CONFLICT, conflicts=conflicts, superseded=set(local.fields)
        )
    out.record.deleted = False
    out.record.deleted_clock = None
    out.existence_changed = True
    out.status = MergeStatus.MERGED
    if schema.delete_policy is DeletePolicy.MANUAL:
        # Restored with the edit (nothing lost while a person decides); the conflict
        # asks whether the delete should still happen.
        out.conflicts.append(
            FieldConflict(DELETED_FIELD, False, False, True, local.hlc, remote_hlc)
        )
    return _settle(out)


def _set(out: MergeResult, name: str, value: Any, hlc: str, version: int) -> None:
    out.record.fields[name] = copy.deepcopy(value)
    out.record.clocks[name] = FieldClock(hlc, version)
    out.changed.add(name)


def _merge_concurrent(
    out: MergeResult,
    spec: FieldSpec | None,
    policy: MergePolicy,
    name: str,
    base_value: Any,
    local_value: Any,
    remote_value: Any,
    local_hlc: str,
    clock: FieldClock,
    version: int,
) -> None:
    if local_value == remote_value:
        # Both sides agree; keep the later clock so LWW stays order-independent.
        if local_hlc > clock.hlc:
            out.record.clocks[name] = FieldClock(local_hlc, clock.version)
        return
    if policy is MergePolicy.LWW:
        if local_hlc > clock.hlc:
            _set(out, name, local_value, local_hlc, version)
        else:
            out.superseded.add(name)
            out.status = MergeStatus.MERGED
    elif policy is MergePolicy.SERVER_WINS:
        out.superseded.add(name)
        out.status = MergeStatus.MERGED
    elif policy is MergePolicy.MAX:
        if greater(local_value, remote_value, spec):
            _set(out, name, local_value, local_hlc, version)
        else:
            out.superseded.add(name)
            out.status = MergeStatus.MERGED
    elif policy is MergePolicy.UNION:
        merged = merge_union(base_value, local_value, remote_value)
        _set_combined(out, name, merged, local_value, remote_value, local_hlc, clock, version)
    elif policy is MergePolicy.APPEND:
        text = merge_append(base_value, local_value, remote_value)
        _set_combined(out, name, text, local_value, remote_value, local_hlc, clock, version)
    elif policy is MergePolicy.MANUAL:
        if local_value == base_value:
            return  # the device did not really change it; the server's value stands
        if remote_value == base_value:
            _set(out, name, local_value, local_hlc, version)
            return
        out.conflicts.append(
            FieldConflict(
                name,
                copy.deepcopy(base_value),
                copy.deepcopy(local_value),
                copy.deepcopy(remote_value),
                local_hlc,
                clock.hlc,
            )
        )
    else:  # pragma: no cover - exhaustive
        raise AssertionError(policy)


def _set_combined(
    out: MergeResult,
    name: str,
    merged: Any,
    local_value: Any,
    remote_value: Any,
    local_hlc: str,
    clock: FieldClock,
    version: int,
) -> None:
    """Store a union/append result with a clock that says who wrote it."""
    if merged == remote_value:
        out.status = MergeStatus.MERGED
        return
    if merged == local_value:
        _set(out, name, merged, local_hlc, version)
        return
    out.status = MergeStatus.MERGED
    _set(out, name, merged, _merged_hlc(local_hlc, clock.hlc), version)


def _merge_delete(
    schema: EntitySchema,
    local: LocalEdit,
    remote: StoredRecord,
    base_version: int,
    new_version: int,
) -> MergeResult:
    """A delete: it meets a concurrent edit when another writer changed a field after
    the device's base; the entity's delete policy then decides (module docstring)."""
    result = remote.copy()
    if remote.deleted:
        if local.hlc > (remote.deleted_clock.hlc if remote.deleted_clock else ""):
            result.deleted_clock = FieldClock(
                local.hlc, remote.deleted_clock.version if remote.deleted_clock else new_version
            )
        return MergeResult(result, MergeStatus.UNCHANGED)
    writers = {n: _writer(c.hlc, local.hlc) for n, c in remote.clocks.items()}
    if any(w is _Writer.OWN_LATER for w in writers.values()):
        # The device wrote the record after deleting it (a re-create arriving first).
        return MergeResult(result, MergeStatus.UNCHANGED, superseded={DELETED_FIELD})
    edited_since = sorted(
        n
        for n, c in remote.clocks.items()
        if c.version > base_version and writers[n] is _Writer.OTHER
    )
    if edited_since and schema.delete_policy is DeletePolicy.EDIT_WINS:
        return MergeResult(result, MergeStatus.MERGED, superseded={DELETED_FIELD})
    remote_hlc = max((remote.clocks[n].hlc for n in edited_since), default=None)
    if edited_since and schema.delete_policy is DeletePolicy.MANUAL:
        conflict = FieldConflict(DELETED_FIELD, False, True, False, local.hlc, remote_hlc)
        return MergeResult(result, MergeStatus.CONFLICT, conflicts=[conflict])
    result.deleted = True
    result.deleted_clock = FieldClock(local.hlc, new_version)
    if not edited_since:
        return MergeResult(result, MergeStatus.APPLIED, existence_changed=True)
    # delete_wins: the concurrent edits stay visible in conflicts (the server's value
    # is the edit, the device's is "gone").
    conflicts = [
        FieldConflict(
            n,
            None,
            None,
            copy.deepcopy(remote.fields.get(n)),
            local.hlc,
            remote.clocks[n].hlc,
        )
        for n in edited_since
    ]
    conflicts.append(FieldConflict(DELETED_FIELD, False, True, False, local.hlc, remote_hlc))
    return MergeResult(result, MergeStatus.CONFLICT, conflicts=conflicts, existence_changed=True)


def resolve_conflict_value(
    choice: Literal["local", "remote", "value"], conflict: FieldConflict, value: Any = None
) -> Any:
    """The value a resolution stands for: the device's, the server's, or a new one."""
    if choice == "local":
        return conflict.local
    if choice == "remote":
        return conflict.remote
    return value
