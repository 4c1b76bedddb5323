"""The fake server's records and the sync protocol applied to them.

Built from the protocol's own rules — :func:`sync_protocol.merge_record`,
:func:`sync_protocol.mutation_result`, :class:`sync_protocol.ConflictRecord`, the
request models — so it answers like the real server; the wire conformance suite
(``tests/conformance``) runs the same exchanges against both and fails when they differ.
Pushes are applied unit by unit: an ungrouped mutation alone, a mutation group all or
nothing (a refused member refuses the others with ``group_rejected``).
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
from dataclasses import dataclass
from typing import Any

from sync_protocol import (
    ConflictRecord,
    ErrorCode,
    FieldClock,
    FieldError,
    HybridLogicalClock,
    LocalEdit,
    Mutation,
    MutationResult,
    MutationStatus,
    PullRequest,
    PushRequest,
    SchemaRegistry,
    Scope,
    StoredRecord,
    merge_record,
    mutation_result,
)
from sync_protocol.errors import ErrorBody

CONFLICTS = "_conflicts"


@dataclass
class Row:
    record: StoredRecord
    version: int


class Rejected(Exception):
    def __init__(self, code: ErrorCode, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.body = ErrorBody(code=code, message=message, details=details or {})


class Ledger:
    """Every record of the fake server, with the version counter and idempotency."""

    def __init__(self, schema: SchemaRegistry) -> None:
        self.schema = schema
        self.rows: dict[tuple[str, str], Row] = {}
        self.evicted: dict[tuple[str, str], int] = {}
        self.resync_before = 0
        self.version = 0
        self.hlc = HybridLogicalClock("server")
        #: (user, device, mutation id) -> (digest of what was sent, first answer)
        self._seen: dict[tuple[str, str, str], tuple[str, MutationResult]] = {}
        self._ids = itertools.count(1)

    # -- push -------------------------------------------------------------------------------
    def push(self, request: PushRequest, user_id: str, device_id: str) -> dict[str, Any]:
        slots: dict[int, MutationResult] = {}
        for unit in _units(request.mutations):
            members = [request.mutations[i] for i in unit]
            for i, result in zip(unit, self._unit(members, user_id, device_id), strict=True):
                slots[i] = result
        return {
            "protocol": 1,
            "results": [slots[i].model_dump(mode="json") for i in sorted(slots)],
            "server_hlc": self.hlc.now().encode(),
            "warnings": [],
        }

    def _unit(self, members: list[Mutation], user_id: str, device: str) -> list[MutationResult]:
        """Idempotency is per (user, device, mutation id), checked against the content."""
        known = [self._seen.get((user_id, device, m.id)) for m in members]
        if any(k is not None for k in known):
            return self._decided_earlier(members, known, (user_id, device))
        saved = copy.deepcopy((self.rows, self.version)) if len(members) > 1 else None
        results: list[MutationResult] = []
        member = members[0]
        try:
            for member in members:
                self.hlc.receive(member.hlc)
                results.append(self._apply(member, user_id))
        except Rejected as rejection:
            if saved is not None:
                self.rows, self.version = saved
            results = [_rejected(m, rejection.body, member.id) for m in members]
        for m, result in zip(members, results, strict=True):
            self._seen[(user_id, device, m.id)] = (_digest(m), result)
        return results

    def _decided_earlier(
        self,
        members: list[Mutation],
        known: list[tuple[str, MutationResult] | None],
        who: tuple[str, str],
    ) -> list[MutationResult]:
        first = next(m.id for m, k in zip(members, known, strict=True) if k is not None)
        out = []
        for m, k in zip(members, known, strict=True):
            if k is not None:
                out.append(_repeat(m, *k))
                continue
            body = ErrorBody(
                code=ErrorCode.GROUP_REJECTED,
                message=f"group {m.group!r} was already decided in an earlier push",
                details={"group": m.group, "failed_mutation_id": first},
            )
            result = MutationResult(mutation_id=m.id, status=MutationStatus.REJECTED, error=body)
            self._seen[(*who, m.id)] = (_digest(m), result)
            out.append(result)
        return out

    def _apply(self, m: Mutation, user_id: str) -> MutationResult:
        entity = self.schema.get(m.collection)
        key = (m.collection, m.record_id)
        if m.collection == CONFLICTS:
            raise Rejected(ErrorCode.FORBIDDEN, "resolve conflicts with `resolves`")
        if entity is None:
            raise Rejected(
                ErrorCode.UNKNOWN_COLLECTION,
                f"unknown collection {m.collection!r}",
                {"collection": m.collection},
            )
        if key in self.evicted:
            raise Rejected(ErrorCode.FORBIDDEN, "this record is outside your scope")
        row = self.rows.get(key)
        if entity.append_only and (m.op == "delete" or row is not None):
            raise Rejected(ErrorCode.APPEND_ONLY, f"{entity.name} are append-only events")
        if m.op == "delete" and row is None:
            return MutationResult(mutation_id=m.id, status=MutationStatus.APPLIED)
        fields = dict(m.fields)
        if m.op == "upsert":
            errors = [
                e
                for name in fields
                if (spec := entity.fields.get(name)) is not None and spec.read_only
                for e in [_read_only(name)]
            ]
            errors += entity.validate(fields, partial=row is not None)
            if errors:
                raise Rejected(
                    ErrorCode.VALIDATION_FAILED,
                    f"{entity.name}: {errors[0].message}",
                    {"fields": [e.model_dump() for e in errors]},
                )
            owner = entity.owner_field
            if row is None and entity.scope is Scope.OWNER and owner in entity.fields:
                fields.setdefault(owner, user_id)  # the server stamps a new record's owner
        new_version = self.version + 1
        edit = LocalEdit(m.op, fields, m.hlc, m.base_version, m.base)
        merged = merge_record(
            entity, m.base, edit, row.record if row else None, new_version=new_version
        )
        version = row.version if row else 0
        if merged.changed or merged.existence_changed:
            self.version = version = new_version
        self.rows[key] = Row(merged.record, version)
        conflict_ids = [self._conflict(m, c, user_id, key, version) for c in merged.conflicts]
        self._resolve(m, user_id)
        return mutation_result(m.id, merged, version=version, conflict_ids=conflict_ids)

    def _conflict(
        self, m: Mutation, c: Any, user_id: str, key: tuple[str, str], version: int
    ) -> str:
        self.version += 1
        cid = f"cf-{next(self._ids)}"
        fields = ConflictRecord.of(
            c, collection=key[0], record_id=key[1], user_id=user_id, mutation_id=m.id
        ).fields()
        clock = FieldClock(self.hlc.now().encode(), self.version)
        self.rows[(CONFLICTS, cid)] = Row(
            StoredRecord(fields=fields, clocks={n: clock for n in fields}), self.version
        )
        return cid

    def _resolve(self, m: Mutation, user_id: str) -> None:
        for cid in m.resolves or ():
            conflict = self.rows.get((CONFLICTS, cid))
            if conflict is None or conflict.record.fields.get("status") != "open":
                continue
            self.version += 1
            name = conflict.record.fields.get("field")
            record = self.rows[(m.collection, m.record_id)].record
            value = record.deleted if name == "_deleted" else record.fields.get(str(name))
            conflict.record.fields["status"] = "resolved"
            conflict.record.fields["resolution"] = {
                "by": user_id,
                "mutation_id": m.id,
                "value": value,
            }
            conflict.version = self.version

    # -- direct writes ------------------------------------------------------------------------
    def put(self, collection: str, record_id: str, fields: dict[str, Any]) -> int:
        """Write a record as another user or the web API would; returns its version."""
        entity = self.schema[collection]
        row = self.rows.get((collection, record_id))
        edit = LocalEdit("upsert", fields, self.hlc.now().encode())
        merged = merge_record(
            entity, None, edit, row.record if row else None, new_version=self.version + 1
        )
        self.version += 1
        self.rows[(collection, record_id)] = Row(merged.record, self.version)
        return self.version

    # -- pull ---------------------------------------------------------------------------------
    def pull(self, request: PullRequest) -> dict[str, Any] | None:
        """A page of changes after the checkpoint; ``None`` when it is too old."""
        since = int(request.checkpoint.split(":")[1]) if request.checkpoint else 0
        if request.checkpoint is not None and since < self.resync_before:
            return None
        changes: list[tuple[int, dict[str, Any]]] = []
        for (collection, rid), row in self.rows.items():
            if row.version <= since or (collection, rid) in self.evicted:
                continue
            change: dict[str, Any] = {
                "collection": collection,
                "record_id": rid,
                "version": row.version,
                "op": "delete" if row.record.deleted else "upsert",
            }
            if not row.record.deleted:
                change["fields"] = copy.deepcopy(row.record.fields)
            changes.append((row.version, change))
        for (collection, rid), version in self.evicted.items():
            if version > since:
                evict = {
                    "collection": collection,
                    "record_id": rid,
                    "version": version,
                    "op": "evict",
                }
                changes.append((version, evict))
        changes.sort(key=lambda c: c[0])
        page = changes[: request.limit]
        checkpoint = page[-1][0] if page else max(since, 0)
        return {
            "protocol": 1,
            "changes": [c for _, c in page],
            "checkpoint": f"v1:{checkpoint}",
            "has_more": len(changes) > len(page),
            "server_hlc": self.hlc.now().encode(),
            "remaining": len(changes) - len(page),
        }


def _digest(m: Mutation) -> str:
    """SHA-256 of a mutation as sent (canonical JSON), to tell a retry from a reuse."""
    text = json.dumps(m.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _repeat(m: Mutation, digest: str, first: MutationResult) -> MutationResult:
    """A mutation id this device used before: ``duplicate`` with the first answer when
    the content is the same, else ``mutation_id_reused`` (nothing changes)."""
    if digest != _digest(m):
        body = ErrorBody(
            code=ErrorCode.MUTATION_ID_REUSED,
            message="this mutation id was already used for a different write",
            details={"mutation_id": m.id},
        )
        return MutationResult(mutation_id=m.id, status=MutationStatus.REJECTED, error=body)
    return first.model_copy(update={"status": MutationStatus.DUPLICATE})


def _units(mutations: list[Mutation]) -> list[list[int]]:
    """Ungrouped mutations alone; a group's members together, where its first one is."""
    units: list[list[int]] = []
    groups: dict[str, list[int]] = {}
    for i, m in enumerate(mutations):
        if m.group is None:
            units.append([i])
        elif m.group in groups:
            groups[m.group].append(i)
        else:
            groups[m.group] = [i]
            units.append(groups[m.group])
    return units


def _rejected(m: Mutation, body: ErrorBody, failed_id: str) -> MutationResult:
    if m.id != failed_id:
        body = ErrorBody(
            code=ErrorCode.GROUP_REJECTED,
            message=f"another write of group {m.group!r} was rejected: {body.message}",
            details={"group": m.group, "failed_mutation_id": failed_id},
        )
    return MutationResult(mutation_id=m.id, status=MutationStatus.REJECTED, error=body)


def _read_only(name: str) -> FieldError:
    return FieldError(field=name, code="read_only", message=f"{name} is set by the server")
