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
device's base (``clock.version > base_version``). A non-concurrent edit causally follows
what the server holds and simply applies. A concurrent one is settled by the field's
:class:`~sync_protocol.schema.MergePolicy`. For ``lww`` the rule is "greater HLC wins"
whatever the arrival order, so replicas converge however deliveries are ordered.

Nothing is silently lost: every local value either lands, is superseded by a write later
in HLC order (``lww``) or by the declared policy (``server_wins``, ``max``), or is kept in
a :class:`FieldConflict` for a person to decide.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from .schema import DeletePolicy, EntitySchema, FieldSpec, MergePolicy

#: Pseudo-field naming a delete-versus-edit conflict in :class:`FieldConflict`.
DELETED_FIELD = "_deleted"


@dataclass(frozen=True, slots=True)
class FieldClock:
    """When a field last changed: the writer's HLC and the server version."""

    hlc: str
    version: int


@dataclass(slots=True)
class StoredRecord:
    """A record as the server holds it."""

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
    """A concurrent write a person must decide; the server kept ``remote``."""

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
            # create of the same id cannot resurrect it silently.
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

    result = remote.copy()
    out = MergeResult(result, MergeStatus.APPLIED)

    if remote.deleted:
        dc = remote.deleted_clock
        deleted_concurrently = dc is not None and dc.version > base_version
        if deleted_concurrently and schema.delete_policy is not DeletePolicy.EDIT_WINS:
            # The record stays deleted; the edit waits in a conflict record.
            for name, value in local.fields.items():
                out.conflicts.append(
                    FieldConflict(
                        name,
                        base_values.get(name),
                        value,
                        remote.fields.get(name),
                        local.hlc,
                        remote.clocks[name].hlc if name in remote.clocks else None,
                    )
                )
            out.conflicts.append(
                FieldConflict(DELETED_FIELD, False, False, True, local.hlc, dc.hlc if dc else None)
            )
            out.status = MergeStatus.CONFLICT
            return out
        result.deleted = False
        result.deleted_clock = None
        out.existence_changed = True
        if deleted_concurrently:
            out.status = MergeStatus.MERGED

    for name, local_value in local.fields.items():
        spec = schema.fields.get(name)
        clock = remote.clocks.get(name)
        remote_value = remote.fields.get(name, _MISSING)
        if clock is None or remote_value is _MISSING:
            # The server never held this field: nothing to be concurrent with.
            _set(out, name, local_value, local.hlc, new_version)
            continue
        concurrent = clock.version > base_version
        if not concurrent:
            if remote_value != local_value:
                _set(out, name, local_value, local.hlc, new_version)
            continue
        policy = spec.merge if spec else MergePolicy.LWW
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

    if out.conflicts:
        out.status = MergeStatus.CONFLICT
    elif out.status is MergeStatus.APPLIED and out.superseded:
        out.status = MergeStatus.MERGED if out.changed else MergeStatus.UNCHANGED
    elif out.status is MergeStatus.APPLIED and not out.changed and not out.existence_changed:
        out.status = MergeStatus.UNCHANGED
    return out


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
    out.status = MergeStatus.MERGED
    if policy is MergePolicy.LWW:
        if local_hlc > clock.hlc:
            _set(out, name, local_value, local_hlc, version)
        else:
            out.superseded.add(name)
    elif policy is MergePolicy.SERVER_WINS:
        out.superseded.add(name)
    elif policy is MergePolicy.MAX:
        if _greater(local_value, remote_value):
            _set(out, name, local_value, max(local_hlc, clock.hlc), version)
        else:
            out.superseded.add(name)
    elif policy is MergePolicy.UNION:
        merged = merge_union(base_value, local_value, remote_value)
        if merged != remote_value:
            _set(out, name, merged, max(local_hlc, clock.hlc), version)
    elif policy is MergePolicy.APPEND:
        merged_text = merge_append(base_value, local_value, remote_value)
        if merged_text != remote_value:
            _set(out, name, merged_text, max(local_hlc, clock.hlc), version)
    elif policy is MergePolicy.MANUAL:
        if local_value == base_value:
            return  # the device did not really change it; the server's value stands
        if remote_value == base_value:
            _set(out, name, local_value, local_hlc, version)
            return
        out.conflicts.append(
            FieldConflict(name, base_value, local_value, remote_value, local_hlc, clock.hlc)
        )
    else:  # pragma: no cover - exhaustive
        raise AssertionError(policy)


def _merge_delete(
    schema: EntitySchema,
    local: LocalEdit,
    remote: StoredRecord,
    base_version: int,
    new_version: int,
) -> MergeResult:
    result = remote.copy()
    if remote.deleted:
        if local.hlc > (remote.deleted_clock.hlc if remote.deleted_clock else ""):
            result.deleted_clock = FieldClock(
                local.hlc, remote.deleted_clock.version if remote.deleted_clock else new_version
            )
        return MergeResult(result, MergeStatus.UNCHANGED)
    edited_since = sorted(n for n, c in remote.clocks.items() if c.version > base_version)
    if edited_since and schema.delete_policy is DeletePolicy.EDIT_WINS:
        return MergeResult(result, MergeStatus.MERGED, superseded={DELETED_FIELD})
    if edited_since and schema.delete_policy is DeletePolicy.MANUAL:
        conflict = FieldConflict(
            DELETED_FIELD,
            False,
            True,
            False,
            local.hlc,
            max(remote.clocks[n].hlc for n in edited_since),
        )
        return MergeResult(result, MergeStatus.CONFLICT, conflicts=[conflict])
    result.deleted = True
    result.deleted_clock = FieldClock(local.hlc, new_version)
    status = MergeStatus.MERGED if edited_since else MergeStatus.APPLIED
    return MergeResult(result, status, existence_changed=True)


def _greater(a: Any, b: Any) -> bool:
    if b is None:
        return a is not None
    if a is None:
        return False
    try:
        return bool(a > b)
    except TypeError:
        return str(a) > str(b)


def merge_union(base: Any, local: Any, remote: Any) -> list[Any]:
    """Three-way set merge of lists: keep both sides' additions, honour removals.

    Order: the server's order first, then the device's additions in its order.
    """
    base_l = list(base or [])
    local_l = list(local or [])
    remote_l = list(remote or [])
    removed = [v for v in base_l if v not in local_l]
    out = [v for v in remote_l if v not in removed]
    for v in local_l:
        if v not in base_l and v not in out:
            out.append(v)
    return out


def merge_append(base: Any, local: Any, remote: Any) -> str:
    """Append-only text: what the device added to its base is appended to the server's."""
    base_s = base or ""
    local_s = local or ""
    remote_s = remote or ""
    if local_s.startswith(base_s):
        addition = local_s[len(base_s) :]
    else:
        addition = ("\n" if remote_s else "") + local_s  # an edit, not an append: keep it all
    if not addition or remote_s.endswith(addition):
        return remote_s
    if remote_s and not addition.startswith("\n") and not remote_s.endswith("\n"):
        addition = "\n" + addition.lstrip("\n") if not base_s else addition
    return remote_s + addition


def resolve_conflict_value(
    choice: Literal["local", "remote", "value"], conflict: FieldConflict, value: Any = None
) -> Any:
    """The value a resolution stands for: the device's, the server's, or a new one."""
    if choice == "local":
        return conflict.local
    if choice == "remote":
        return conflict.remote
    return value
