"""Applying a pushed batch: validate, check scope, merge, store — one unit at a time.

The whole batch runs in one transaction that first locks the version counter (see
:mod:`.state`). Each mutation is *validated before anything is written*: its effect is
computed in memory (a :class:`RowState` per touched record) and only a mutation that
passes every check changes that state, so a rejected mutation leaves no trace but its
result. The rows, the mutation's idempotency record (``applied_mutations``) and its
audit row are written at the end and commit together: after a crash mid-request either
all of a mutation's effects are stored with its result, or none are and a retry
applies it afresh.

**Idempotency** is keyed by ``(user, device, mutation id)`` — ids are chosen by
devices, so two devices choosing one id never meet — and checked against the SHA-256
of what the device sent (:func:`mutation_digest`, taken before the server clamps a
clock). A retry with the same content answers ``duplicate`` with the stored result; the
same id with other content is rejected with ``mutation_id_reused`` and changes nothing.

**Units and groups.** The batch is applied unit by unit: a mutation without ``group``
is a unit of its own; the mutations sharing a ``group`` form one unit, applied together
(in request order) at the position of the group's first member. A unit is all or
nothing: every row it touches is journalled before its first change, and when any
member is rejected — by the engine or by a schema's :class:`PushRules` run on the unit
afterwards — the journal is rolled back (rows and the version counter), the failing
member answers its own error and every other member ``group_rejected``
(``details.group``, ``details.failed_mutation_id``). A group is decided once: if any
member already has a stored result (a retry), every member answers from the stored
results (``duplicate``), and a member never seen before answers ``group_rejected``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, cast

from sqlalchemy import Connection, Table, select

from sync_protocol import (
    DELETED_FIELD,
    ConflictRecord,
    EntitySchema,
    ErrorBody,
    ErrorCode,
    FieldClock,
    FieldConflict,
    FieldError,
    LocalEdit,
    MergeResult,
    MergeStatus,
    Mutation,
    MutationResult,
    MutationStatus,
    SchemaRegistry,
    Scope,
    StoredRecord,
    ValidationFailed,
    merge_record,
    mutation_result,
)

from ..accounts import Principal
from ..models import AppliedMutation, AuditEntry, Record
from .rows import CONFLICTS, RowState, decode_record
from .state import SyncCounter, lock_counter, store_counter

records_t = cast(Table, Record.__table__)
applied_t = cast(Table, AppliedMutation.__table__)
audit_t = cast(Table, AuditEntry.__table__)

CUSTOMERS = "customers"
_CHUNK = 500


class Rejected(Exception):
    """A mutation refused with a stable code; nothing of it (or of its group) is written.

    ``mutation_id`` names the member to blame when a rule rejects a whole unit (default:
    the mutation being applied).
    """

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        details: dict[str, Any] | None = None,
        *,
        mutation_id: str | None = None,
    ):
        super().__init__(message)
        self.body = ErrorBody(code=code, message=message, details=details or {})
        self.mutation_id = mutation_id


@dataclass(frozen=True, slots=True)
class UnitWrite:
    """One applied member of a unit, as a rule sees it: the mutation, the row after it
    (the batch's live state) and the row as it stood before the unit (``None``: new)."""

    mutation: Mutation
    row: RowState
    before: RowState | None


class PushRules(Protocol):
    """Schema-specific checks run on each unit after it is applied in memory.

    Raise :class:`Rejected` (with ``mutation_id`` set to the member to blame) to undo
    the whole unit. Rules read other records through :meth:`PushBatch.row`, which sees
    the batch's own earlier writes.
    """

    def check_unit(self, batch: PushBatch, unit: Sequence[UnitWrite]) -> None: ...


class NoRules:
    """The engine's checks only (any schema without domain rules)."""

    def check_unit(self, batch: PushBatch, unit: Sequence[UnitWrite]) -> None:
        return None


NO_RULES: PushRules = NoRules()


@dataclass(slots=True)
class PushOutcome:
    results: list[MutationResult]
    #: The counter after the batch (the highest version it assigned, or unchanged).
    counter: int
    applied: int = 0
    rejected: int = 0


@dataclass(slots=True)
class _Pending:
    """What a successful mutation will change, applied to the batch state at once."""

    rows: list[RowState] = field(default_factory=list)


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


def conflict_id(mutation_id: str, field_name: str, origin: str = "") -> str:
    """The id of the conflict a mutation opens on a field. ``origin`` (user and device)
    keeps two devices' equal mutation ids apart."""
    key = f"{origin}|{mutation_id}|{field_name}" if origin else f"{mutation_id}|{field_name}"
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"cf-{digest[:32]}"


def mutation_digest(m: Mutation) -> str:
    """SHA-256 of a mutation's content as the device sent it (canonical JSON of the
    parsed message, so formatting and key order do not matter)."""
    canonical = json.dumps(
        m.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class _Stored:
    """A mutation's first answer and the digest of what was sent then."""

    result: str
    digest: str | None


class PushBatch:
    """One push request's transaction. Use :func:`apply_push`."""

    def __init__(
        self,
        conn: Connection,
        principal: Principal,
        schema: SchemaRegistry,
        *,
        now_ms: int,
        server_hlc: Callable[[], str],
        rules: PushRules = NO_RULES,
    ) -> None:
        self.conn = conn
        self.rules = rules
        self.principal = principal
        self.schema = schema
        self.now_ms = now_ms
        self.server_hlc = server_hlc
        self.rows: dict[tuple[str, str], RowState | None] = {}
        self.applied: dict[str, _Stored] = {}
        self.new_results: list[tuple[Mutation, MutationResult]] = []
        self.origin = f"{principal.user_id}|{principal.device_id or ''}"
        self.state = SyncCounter(0, 0)
        #: Rows as they stood before the running unit first touched them.
        self._journal: dict[tuple[str, str], RowState | None] = {}
        #: The version counter when the running unit started.
        self._unit_counter = 0

    # ---- loading -------------------------------------------------------------------

    def _load_rows(self, collection: str, record_ids: Iterable[str]) -> None:
        wanted = sorted({r for r in record_ids if (collection, r) not in self.rows})
        for chunk in _chunks(wanted):
            stmt = select(
                records_t.c.id,
                records_t.c.record_id,
                records_t.c.owner_id,
                records_t.c.customer_id,
                records_t.c.version,
                records_t.c.deleted,
                records_t.c.data,
                records_t.c.clocks,
                records_t.c.created_at_ms,
            ).where(records_t.c.collection == collection, records_t.c.record_id.in_(chunk))
            for row in self.conn.execute(stmt):
                self.rows[(collection, row.record_id)] = RowState(
                    pk=row.id,
                    collection=collection,
                    record_id=row.record_id,
                    owner_id=row.owner_id,
                    customer_id=row.customer_id,
                    version=row.version,
                    record=decode_record(row.data, row.clocks, row.deleted),
                    created_at_ms=row.created_at_ms,
                )
        for rid in wanted:
            self.rows.setdefault((collection, rid), None)

    def _row(self, collection: str, record_id: str) -> RowState | None:
        key = (collection, record_id)
        if key not in self.rows:
            self._load_rows(collection, [record_id])
        return self.rows[key]

    def row(self, collection: str, record_id: str) -> RowState | None:
        """A record as this batch sees it (stored, or as changed by earlier writes of the
        batch); ``None`` if the server never held it. Do not modify the result."""
        return self._row(collection, record_id)

    def load(self, collection: str, record_ids: Iterable[str]) -> None:
        """Prefetch records for :meth:`row` in one query per 500 ids."""
        self._load_rows(collection, record_ids)

    def children(self, collection: str, customer_id: str) -> list[RowState]:
        """The live records of ``collection`` hanging off ``customer_id``, as this batch
        sees them (stored rows plus the batch's own writes)."""
        stmt = select(records_t.c.record_id).where(
            records_t.c.collection == collection, records_t.c.customer_id == customer_id
        )
        self._load_rows(collection, [r.record_id for r in self.conn.execute(stmt)])
        return [
            state
            for (c, _rid), state in self.rows.items()
            if c == collection
            and state is not None
            and state.customer_id == customer_id
            and not state.record.deleted
        ]

    def derive(self, collection: str, record_id: str, values: dict[str, Any]) -> None:
        """Set server-maintained fields of a live record (an order's totals) as part of
        the running unit: new version, server HLC, rolled back with the unit."""
        key = (collection, record_id)
        state = self._row(collection, record_id)
        if state is None or state.record.deleted:
            return
        changed = {k: v for k, v in values.items() if state.record.fields.get(k) != v}
        if not changed:
            return
        self._touch(key)
        # A record the unit already wrote keeps that version (its mutation's result
        # names it); otherwise the derived change is a change of its own.
        version = state.version if state.version > self._unit_counter else self._next_version()
        hlc = self.server_hlc()
        record = state.record.copy()
        record.fields.update(changed)
        record.clocks.update({k: FieldClock(hlc, version) for k in changed})
        state.record, state.version, state.dirty = record, version, True

    def _touch(self, key: tuple[str, str]) -> None:
        """Journal ``key`` before the running unit changes it (first touch only)."""
        if key not in self._journal:
            state = self.rows.get(key)
            self._journal[key] = replace(state) if state is not None else None

    def _prefetch(self, mutations: Sequence[Mutation]) -> None:
        ids = sorted({m.id for m in mutations})
        for chunk in _chunks(ids):
            stmt = select(
                applied_t.c.mutation_id, applied_t.c.result, applied_t.c.content_hash
            ).where(
                applied_t.c.user_id == self.principal.user_id,
                applied_t.c.device_id == (self.principal.device_id or ""),
                applied_t.c.mutation_id.in_(chunk),
            )
            self.applied.update(
                {r.mutation_id: _Stored(r.result, r.content_hash) for r in self.conn.execute(stmt)}
            )
        by_collection: dict[str, set[str]] = {}
        customers: set[str] = set()
        for m in mutations:
            by_collection.setdefault(m.collection, set()).add(m.record_id)
            ref = m.fields.get("customer_id")
            if isinstance(ref, str):
                customers.add(ref)
            if m.resolves:
                by_collection.setdefault(CONFLICTS, set()).update(m.resolves)
        for collection, rids in by_collection.items():
            self._load_rows(collection, rids)
        for (_collection, _rid), state in list(self.rows.items()):
            if state is not None and state.customer_id:
                customers.add(state.customer_id)
        self._load_rows(CUSTOMERS, customers)

    # ---- the batch -----------------------------------------------------------------

    def run(
        self,
        mutations: Sequence[Mutation],
        digests: Sequence[str],
        before_commit: Callable[[], None] | None = None,
    ) -> PushOutcome:
        self.state = lock_counter(self.conn)
        start_counter = self.state.counter
        self._prefetch(mutations)
        slots: list[MutationResult | None] = [None] * len(mutations)
        outcome = PushOutcome([], start_counter)
        for unit in units_of(mutations):
            members = [mutations[i] for i in unit]
            sent = [digests[i] for i in unit]
            for i, result in zip(unit, self._run_unit(members, sent, outcome), strict=True):
                slots[i] = result
        outcome.results = [r for r in slots if r is not None]
        self._flush(start_counter)
        outcome.counter = self.state.counter
        if before_commit is not None:
            before_commit()
        return outcome

    def _run_unit(
        self, members: list[Mutation], digests: list[str], outcome: PushOutcome
    ) -> list[MutationResult]:
        """Apply one unit (a mutation, or a group) all or nothing; its results in order."""
        stored = [self.applied.get(m.id) for m in members]
        if any(s is not None for s in stored):
            return self._decided_earlier(members, stored, digests, outcome)
        self._journal = {}
        counter = self._unit_counter = self.state.counter
        applied: list[MutationResult] = []
        member = members[0]
        try:
            for member in members:
                applied.append(self._apply(member))
            writes = [
                UnitWrite(
                    m,
                    cast(RowState, self.rows[(m.collection, m.record_id)]),
                    self._journal.get((m.collection, m.record_id)),
                )
                for m in members
                if self.rows.get((m.collection, m.record_id)) is not None
            ]
            self.rules.check_unit(self, writes)
        except Rejected as rejection:
            for key, state in self._journal.items():
                self.rows[key] = state
            self.state.counter = counter
            results = self._reject_unit(members, rejection.mutation_id or member.id, rejection)
            outcome.rejected += len(members)
        else:
            results = applied
            outcome.applied += len(members)
        finally:
            self._journal = {}
        for m, digest, result in zip(members, digests, results, strict=True):
            self.applied[m.id] = _Stored(result.model_dump_json(exclude={"record"}), digest)
            self.new_results.append((m, result))
        return results

    def _reject_unit(
        self, members: list[Mutation], failed_id: str, rejection: Rejected
    ) -> list[MutationResult]:
        group = members[0].group
        results = []
        for m in members:
            body = rejection.body
            if m.id != failed_id:
                body = ErrorBody(
                    code=ErrorCode.GROUP_REJECTED,
                    message=f"another write of group {group!r} was rejected: "
                    f"{rejection.body.message}",
                    details={"group": group, "failed_mutation_id": failed_id},
                )
            results.append(
                MutationResult(mutation_id=m.id, status=MutationStatus.REJECTED, error=body)
            )
        return results

    def _decided_earlier(
        self,
        members: list[Mutation],
        stored: list[_Stored | None],
        digests: list[str],
        outcome: PushOutcome,
    ) -> list[MutationResult]:
        """A retried unit: stored members answer ``duplicate`` (``mutation_id_reused``
        when the content differs); a member never seen before cannot join a group already
        decided and answers ``group_rejected``."""
        first_known = next(m.id for m, s in zip(members, stored, strict=True) if s is not None)
        results = []
        for m, s, digest in zip(members, stored, digests, strict=True):
            if s is not None:
                results.append(_repeat(m, s, digest))
                outcome.rejected += results[-1].status is MutationStatus.REJECTED
                continue
            result = MutationResult(
                mutation_id=m.id,
                status=MutationStatus.REJECTED,
                error=ErrorBody(
                    code=ErrorCode.GROUP_REJECTED,
                    message=f"group {m.group!r} was already decided in an earlier push; "
                    "a group never spans two pushes",
                    details={"group": m.group, "failed_mutation_id": first_known},
                ),
            )
            outcome.rejected += 1
            self.applied[m.id] = _Stored(result.model_dump_json(exclude={"record"}), digest)
            self.new_results.append((m, result))
            results.append(result)
        return results

    def _next_version(self) -> int:
        self.state.counter += 1
        return self.state.counter

    # ---- one mutation --------------------------------------------------------------

    def _apply(self, m: Mutation) -> MutationResult:
        if m.collection == CONFLICTS:
            raise Rejected(
                ErrorCode.FORBIDDEN,
                "conflicts are resolved by writing the record with `resolves`",
            )
        entity = self.schema.get(m.collection)
        if entity is None:
            raise Rejected(
                ErrorCode.UNKNOWN_COLLECTION,
                f"unknown collection {m.collection!r}",
                {"collection": m.collection},
            )
        p = self.principal
        if entity.write_roles is not None and p.role not in entity.write_roles:
            raise Rejected(
                ErrorCode.FORBIDDEN,
                f"your role ({p.role}) may not write {entity.name}",
                {"write_roles": sorted(entity.write_roles)},
            )
        current = self._row(m.collection, m.record_id)
        self._touch((m.collection, m.record_id))
        if entity.append_only and (m.op == "delete" or current is not None):
            raise Rejected(
                ErrorCode.APPEND_ONLY,
                f"{entity.name} are append-only events: they cannot be changed or deleted",
            )
        if m.op == "delete":
            if current is None:
                # Never stored here (created and deleted offline, or purged): nothing to do.
                return MutationResult(mutation_id=m.id, status=MutationStatus.APPLIED)
            self._check_visible(current.owner_id)
            owner, customer = current.owner_id, current.customer_id
            fields: dict[str, Any] = {}
        else:
            fields = dict(m.fields)
            self._validate(entity, fields, creating=current is None)
            owner, customer = self._placement(entity, m, fields, current)

        version = self.state.counter + 1
        remote = current.record if current is not None else None
        if remote is None and m.op == "upsert":
            # A record the server never held: exactly merge_record's first case, without
            # its defensive deep copy (``fields`` is already this batch's own dict).
            merged = MergeResult(
                StoredRecord(fields=fields, clocks={n: FieldClock(m.hlc, version) for n in fields}),
                MergeStatus.APPLIED,
                changed=set(fields),
                existence_changed=True,
            )
        else:
            merged = merge_record(
                entity,
                m.base,
                LocalEdit(
                    op=m.op, fields=fields, hlc=m.hlc, base_version=m.base_version, base=m.base
                ),
                remote,
                new_version=version,
            )
        record = merged.record
        changed = bool(merged.changed) or merged.existence_changed
        if current is None:
            current = RowState(
                pk=None,
                collection=m.collection,
                record_id=m.record_id,
                owner_id=owner,
                customer_id=customer,
                version=0,
                record=record,
                created_at_ms=self.now_ms,
            )
            self.rows[(m.collection, m.record_id)] = current
        placement_changed = (owner, customer) != (current.owner_id, current.customer_id)
        if changed or placement_changed:
            current.version = self._next_version()
        if changed or placement_changed or record.clocks != current.record.clocks:
            current.dirty = True
        current.record = record
        current.owner_id, current.customer_id = owner, customer

        conflict_ids = [self._store_conflict(m, current, c) for c in merged.conflicts]
        if m.resolves:
            self._resolve(m, current)

        # the protocol's one merge -> answer rule (shared with the SDK's fake server)
        return mutation_result(m.id, merged, version=current.version, conflict_ids=conflict_ids)

    def _check_visible(self, owner_id: str | None) -> None:
        if not self.principal.sees_owner(owner_id):
            raise Rejected(ErrorCode.FORBIDDEN, "this record is outside your scope")

    def _validate(self, entity: EntitySchema, fields: dict[str, Any], *, creating: bool) -> None:
        errors: list[FieldError] = []
        for name in fields:
            spec = entity.fields.get(name)
            if spec is not None and spec.read_only:
                errors.append(
                    FieldError(field=name, code="read_only", message=f"{name} is set by the server")
                )
        errors.extend(entity.validate(fields, partial=not creating))
        if errors:
            failure = ValidationFailed(f"{entity.name}: {errors[0].message}", errors=errors)
            raise Rejected(ErrorCode.VALIDATION_FAILED, failure.message, failure.details)

    def _placement(
        self,
        entity: EntitySchema,
        m: Mutation,
        fields: dict[str, Any],
        current: RowState | None,
    ) -> tuple[str | None, str | None]:
        """(owner_id, customer_id) of the record after the write; scope-checked."""
        if current is not None:
            self._check_visible(current.owner_id)
        if entity.scope is Scope.REFERENCE:
            return None, None
        if entity.scope is Scope.OWNER:
            spec = entity.fields.get(entity.owner_field)
            if current is None:
                if spec is not None and not spec.read_only and entity.owner_field in fields:
                    owner = str(fields[entity.owner_field])
                else:
                    owner = self.principal.user_id
                    if spec is not None:
                        fields[entity.owner_field] = owner
            elif entity.owner_field in fields:
                owner = str(fields[entity.owner_field])
            else:
                owner = current.owner_id or self.principal.user_id
            self._check_visible(owner)
            customer = m.record_id if entity.name == CUSTOMERS else None
            return owner, customer
        # Scope.CUSTOMER: follows the customer it hangs off.
        customer_id = fields.get(entity.customer_field)
        if customer_id is None and current is not None:
            customer_id = current.customer_id
        parent = self._row(CUSTOMERS, str(customer_id)) if customer_id else None
        if parent is None or not self.principal.sees_owner(parent.owner_id):
            raise Rejected(
                ErrorCode.FORBIDDEN,
                "the customer is unknown or outside your scope",
                {"customer_id": customer_id},
            )
        return parent.owner_id, str(customer_id)

    # ---- conflicts -----------------------------------------------------------------

    def _store_conflict(self, m: Mutation, row: RowState, c: FieldConflict) -> str:
        cid = conflict_id(m.id, c.field, self.origin)
        version = self._next_version()
        fields = ConflictRecord.of(
            c,
            collection=row.collection,
            record_id=row.record_id,
            device_id=self.principal.device_id,
            user_id=self.principal.user_id,
            mutation_id=m.id,
        ).fields()
        hlc = self.server_hlc()
        record = StoredRecord(fields=fields, clocks={n: FieldClock(hlc, version) for n in fields})
        self._touch((CONFLICTS, cid))
        self.rows[(CONFLICTS, cid)] = RowState(
            pk=None,
            collection=CONFLICTS,
            record_id=cid,
            owner_id=row.owner_id,
            customer_id=row.customer_id,
            version=version,
            record=record,
            created_at_ms=self.now_ms,
            dirty=True,
        )
        return cid

    def _resolve(self, m: Mutation, row: RowState) -> None:
        for cid in m.resolves or ():
            conflict = self._row(CONFLICTS, cid)
            if conflict is None or conflict.record.fields.get("status") != "open":
                continue
            if not self.principal.sees_owner(conflict.owner_id):
                continue
            self._touch((CONFLICTS, cid))
            name = conflict.record.fields.get("field")
            value: Any = row.record.deleted if name == DELETED_FIELD else None
            if isinstance(name, str) and name != DELETED_FIELD:
                value = row.record.fields.get(name)
            version = self._next_version()
            hlc = self.server_hlc()
            fields = dict(conflict.record.fields)
            fields["status"] = "resolved"
            fields["resolution"] = {
                "by": self.principal.user_id,
                "device_id": self.principal.device_id,
                "mutation_id": m.id,
                "value": value,
            }
            clocks = dict(conflict.record.clocks)
            clocks["status"] = clocks["resolution"] = FieldClock(hlc, version)
            conflict.record = StoredRecord(fields=fields, clocks=clocks)
            conflict.version = version
            conflict.dirty = True

    # ---- writing -------------------------------------------------------------------

    def _flush(self, start_counter: int) -> None:
        """Write the batch with one ``executemany`` per table, straight to the driver:
        SQLAlchemy's per-row parameter processing would cost more than the SQL."""
        uid, now, device = self.principal.user_id, self.now_ms, self.principal.device_id
        inserts: list[tuple[Any, ...]] = []
        updates: list[tuple[Any, ...]] = []
        for row in self.rows.values():
            if row is None or not row.dirty:
                continue
            data, clocks = row.encoded()
            owner, customer, version, deleted = (
                row.owner_id,
                row.customer_id,
                row.version,
                row.record.deleted,
            )
            if row.pk is None:
                inserts.append(
                    (row.collection, row.record_id, owner, customer, version, deleted, data,
                     clocks, row.created_at_ms, now, uid)
                )  # fmt: skip
            else:
                updates.append((owner, customer, version, deleted, data, clocks, now, uid, row.pk))
        conn = self.conn
        _insert(conn, "records", _RECORD_COLUMNS, inserts)
        _executemany(
            conn,
            "UPDATE records SET owner_id = {0}, customer_id = {0}, version = {0}, deleted = {0}, "
            "data = {0}, clocks = {0}, updated_at_ms = {0}, updated_by = {0} WHERE id = {0}",
            0,
            updates,
        )
        _insert(
            conn,
            "applied_mutations",
            _APPLIED_COLUMNS,
            [
                (uid, device or "", m.id, self.applied[m.id].digest, self.applied[m.id].result, now)
                for m, _ in self.new_results
            ],
        )
        _insert(
            conn,
            "audit_log",
            _AUDIT_COLUMNS,
            [
                (
                    now,
                    uid,
                    device,
                    f"mutation.{r.status.value}",
                    f"{m.collection}/{m.record_id}",
                    json.dumps(
                        {
                            "mutation_id": m.id,
                            "op": m.op,
                            "version": r.version,
                            "error": r.error.code.value if r.error else None,
                        }
                    ),
                )
                for m, r in self.new_results
            ],
        )
        if self.state.counter != start_counter:
            store_counter(conn, self.state)


def _executemany(conn: Connection, sql: str, width: int, rows: list[tuple[Any, ...]]) -> None:
    """``sql`` with ``{}`` (a VALUES list of ``width``) or ``{0}`` (one placeholder)."""
    if not rows:
        return
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    statement = sql.format(", ".join([mark] * width)) if width else sql.format(mark)
    conn.exec_driver_sql(statement, rows)


def _insert(
    conn: Connection, table: str, columns: Sequence[tuple[str, str]], rows: list[tuple[Any, ...]]
) -> None:
    """Insert many rows. SQLite's ``executemany`` loops in C. On PostgreSQL the batch
    travels as one JSON array parameter unpacked by ``json_array_elements`` — one
    statement, encoded and parsed in C on both sides (a pipelined ``executemany`` pays a
    round of Python per row, and psycopg's text arrays escape every element in Python)."""
    if not rows:
        return
    names = ", ".join(name for name, _ in columns)
    if conn.dialect.name != "postgresql":
        _executemany(conn, f"INSERT INTO {table} ({names}) VALUES ({{}})", len(columns), rows)
        return
    picks = ", ".join(f"(e->>{i})::{sql_type}" for i, (_, sql_type) in enumerate(columns))
    payload = json.dumps(rows, ensure_ascii=False, separators=(",", ":"))
    conn.exec_driver_sql(
        f"INSERT INTO {table} ({names}) SELECT {picks} FROM json_array_elements(%s::json) AS e",
        (payload,),
    )


_RECORD_COLUMNS = (
    ("collection", "text"),
    ("record_id", "text"),
    ("owner_id", "text"),
    ("customer_id", "text"),
    ("version", "bigint"),
    ("deleted", "boolean"),
    ("data", "text"),
    ("clocks", "text"),
    ("created_at_ms", "bigint"),
    ("updated_at_ms", "bigint"),
    ("updated_by", "text"),
)
_APPLIED_COLUMNS = (
    ("user_id", "text"),
    ("device_id", "text"),
    ("mutation_id", "text"),
    ("content_hash", "text"),
    ("result", "text"),
    ("created_at_ms", "bigint"),
)
_AUDIT_COLUMNS = (
    ("at_ms", "bigint"),
    ("user_id", "text"),
    ("device_id", "text"),
    ("action", "text"),
    ("target", "text"),
    ("details", "text"),
)


def _repeat(m: Mutation, stored: _Stored, digest: str) -> MutationResult:
    """The answer to a mutation id already used by this device: ``duplicate`` with the
    first answer when the content is the same, else ``mutation_id_reused``."""
    if stored.digest is not None and stored.digest != digest:
        return MutationResult(
            mutation_id=m.id,
            status=MutationStatus.REJECTED,
            error=ErrorBody(
                code=ErrorCode.MUTATION_ID_REUSED,
                message="this mutation id was already used for a different write; "
                "give every write its own id",
                details={"mutation_id": m.id},
            ),
        )
    original = MutationResult.model_validate_json(stored.result)
    return original.model_copy(update={"status": MutationStatus.DUPLICATE})


def units_of(mutations: Sequence[Mutation]) -> list[list[int]]:
    """Indices of ``mutations`` cut into units: each ungrouped mutation alone; the members
    of a group together, in request order, placed where the group's first member is."""
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


def apply_push(
    conn: Connection,
    principal: Principal,
    schema: SchemaRegistry,
    mutations: Sequence[Mutation],
    *,
    now_ms: int,
    server_hlc: Callable[[], str],
    before_commit: Callable[[], None] | None = None,
    rules: PushRules = NO_RULES,
    digests: Sequence[str] | None = None,
) -> PushOutcome:
    """Apply ``mutations`` unit by unit inside the caller's transaction (which commits).

    ``digests`` are the :func:`mutation_digest` of each mutation *as the device sent
    it* — pass them when the mutations were altered since (clocks clamped), so an
    honest retry still answers ``duplicate``. By default they are taken here.
    """
    if digests is None:
        digests = [mutation_digest(m) for m in mutations]
    batch = PushBatch(conn, principal, schema, now_ms=now_ms, server_hlc=server_hlc, rules=rules)
    return batch.run(mutations, digests, before_commit)
