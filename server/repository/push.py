"""Applying a pushed batch: validate, check scope, merge, store — one unit at a time.

The whole batch runs in one transaction that first declares itself a writer
(:func:`~.state.begin_write`: SQLite's write lock; on PostgreSQL a shared gate and a
mark, so concurrent pushes do not wait for each other) and takes its versions from
:class:`~.state.Versions`. Each mutation is *validated before anything is written*: its effect is
computed in memory (a :class:`RowState` per touched record) and only a mutation that
passes every check changes that state, so a rejected mutation leaves no trace but its
result. The rows, the mutation's idempotency record (``applied_mutations``) and its
audit row are written at the end and commit together: after a crash mid-request either
all of a mutation's effects are stored with its result, or none are and a retry
applies it afresh.

**Concurrent pushes** (PostgreSQL) read without locks and write optimistically: the
writes fail softly (:class:`~.writing.Raced`) when another transaction stored one of the
batch's mutation ids, created one of its new records or changed a record it read and
rewrites; the batch is then rolled back to a savepoint and applied again (it now sees
that row), at most five times, else the push answers 503 "retry".

**Idempotency** is keyed by ``(user, device, mutation id)`` — ids are chosen by
devices, so two devices choosing one id never meet — and checked against the SHA-256
of what the device sent (:func:`~.units.mutation_digest`, taken before the server
clamps a clock). A retry with the same content answers ``duplicate`` with the stored
result; the same id with other content is rejected with ``mutation_id_reused`` and
changes nothing.

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

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

from sqlalchemy import Connection, Table, select
from sqlalchemy.exc import DBAPIError, OperationalError

from sync_protocol import (
    EntitySchema,
    ErrorCode,
    FieldClock,
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
from sync_protocol.results import construct_result

from .. import scope
from ..accounts import Principal
from ..models import Record
from .conflicts import conflict_id, resolve_conflicts, store_conflict
from .rows import CONFLICTS, RowState, decode_record
from .state import Versions, begin_write
from .units import (
    NO_RULES,
    NoRules,
    PushRules,
    Rejected,
    UnitWrite,
    decided_results,
    mutation_digest,
    rejected_results,
    units_of,
)
from .writing import Raced, StoredResult, lookup, write_batch

records_t = cast(Table, Record.__table__)

_LOAD_ROWS = (
    "SELECT id, record_id, owner_id, customer_id, version, deleted, data, clocks, created_at_ms "
    "FROM records WHERE collection = {0} AND {1}"
)
_LOAD_APPLIED = (
    "SELECT mutation_id, result, content_hash FROM applied_mutations "
    "WHERE user_id = {0} AND device_id = {0} AND {1}"
)

CUSTOMERS = "customers"
#: Ids per lookup statement: a whole push (``max_batch`` is 1,000 by default) in one —
#: PostgreSQL's key-by-key form is plan-stable at any size, SQLite takes up to 32,766
#: parameters.
LOOKUP_CHUNK = 8000
_CHUNK = LOOKUP_CHUNK
#: Roles that may set a read-only owner field when creating a record (within scope).
_PLACING_ROLES = frozenset({"manager", "admin"})
#: New records alone in their unit take :meth:`PushBatch._create` (tests turn it off to
#: compare).
FAST_CREATES = True
_UNKNOWN: Any = object()


@dataclass(slots=True)
class PushOutcome:
    results: list[MutationResult]
    #: The highest version the batch assigned (SQLite: the counter, unchanged if none;
    #: PostgreSQL: 0 if none).
    counter: int
    applied: int = 0
    rejected: int = 0


def _read_only(entity: EntitySchema, name: str) -> bool:
    spec = entity.fields.get(name)
    return spec is None or spec.read_only


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


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
        repointing: bool = False,
    ) -> None:
        self.conn = conn
        self.rules = rules
        #: The server re-points references (a customer merge): append-only events may
        #: be updated too.
        self.repointing = repointing
        self.principal = principal
        self.schema = schema
        self.now_ms = now_ms
        self.server_hlc = server_hlc
        self.rows: dict[tuple[str, str], RowState | None] = {}
        self.applied: dict[str, StoredResult] = {}
        self.new_results: list[tuple[Mutation, MutationResult]] = []
        self.origin = f"{principal.user_id}|{principal.device_id or ''}"
        #: Set by :func:`apply_push` (this transaction's :class:`~.state.Versions`).
        self.versions: Versions
        #: Rows as they stood before the running unit first touched them.
        self._journal: dict[tuple[str, str], RowState | None] = {}
        #: Versions the running unit took (a row holding one was written by the unit).
        self._unit_versions: set[int] = set()
        #: Per-batch state of the schema's rules (caches, keys seen in this batch).
        self.scratch: dict[str, Any] = {}
        #: Some mutation ids may be stored already (a rerun after :class:`Raced`): read
        #: their results first.
        self.known_applied = False
        self.mutations: Sequence[Mutation] = ()
        #: Per collection, what :meth:`_create` needs (``None``: not for it).
        self._creating: dict[str, tuple[EntitySchema, bool] | None] = {}

    # ---- loading -------------------------------------------------------------------

    def _load_rows(self, collection: str, record_ids: Iterable[str]) -> None:
        wanted = sorted({r for r in record_ids if (collection, r) not in self.rows})
        for chunk in _chunks(wanted):
            for pk, rid, owner, customer, version, deleted, data, clocks, created in lookup(
                self.conn, _LOAD_ROWS, "record_id", chunk, (collection,)
            ):
                record = decode_record(data, clocks, deleted)
                self.rows[(collection, rid)] = RowState(
                    pk=pk,
                    collection=collection,
                    record_id=rid,
                    owner_id=owner,
                    customer_id=customer,
                    version=version,
                    record=record,
                    created_at_ms=created,
                    stored_version=version,
                    stored=record,
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
        """Prefetch records for :meth:`row` (one query per :data:`LOOKUP_CHUNK` ids)."""
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
        self.touch(key)
        # A record the unit already wrote keeps that version (its mutation's result
        # names it); otherwise the derived change is a change of its own.
        version = state.version if state.version in self._unit_versions else self.next_version()
        hlc = self.server_hlc()
        record = state.record.copy()
        record.fields.update(changed)
        record.clocks.update({k: FieldClock(hlc, version) for k in changed})
        state.record, state.version, state.dirty = record, version, True

    def touch(self, key: tuple[str, str]) -> None:
        """Journal ``key`` before the running unit changes it (first touch only)."""
        if key not in self._journal:
            state = self.rows.get(key)
            self._journal[key] = replace(state) if state is not None else None

    def _prefetch(self, mutations: Sequence[Mutation]) -> None:
        if self.known_applied:
            # A rerun after the idempotency INSERT found stored results (a retry): load
            # them. A fresh batch skips this read — the INSERT … ON CONFLICT that stores
            # the results is the check (:func:`~.writing.write_batch`).
            ids = sorted({m.id for m in mutations})
            for chunk in _chunks(ids):
                self.applied.update(
                    (mid, StoredResult(result, digest))
                    for mid, result, digest in lookup(
                        self.conn,
                        _LOAD_APPLIED,
                        "mutation_id",
                        chunk,
                        (self.principal.user_id, self.principal.device_id or ""),
                    )
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

    def run(self, mutations: Sequence[Mutation], digests: Sequence[str]) -> PushOutcome:
        self.mutations = mutations
        start_counter = self.versions.last
        self._prefetch(mutations)
        slots: list[MutationResult | None] = [None] * len(mutations)
        outcome = PushOutcome([], start_counter)
        creates = FAST_CREATES
        for unit in units_of(mutations):
            if creates and len(unit) == 1:
                i = unit[0]
                created = self._create(mutations[i], digests[i], outcome)
                if created is not None:
                    slots[i] = created
                    continue
            members = [mutations[i] for i in unit]
            sent = [digests[i] for i in unit]
            for i, result in zip(unit, self._run_unit(members, sent, outcome), strict=True):
                slots[i] = result
        outcome.results = [r for r in slots if r is not None]
        self._flush()
        outcome.counter = self.versions.last
        return outcome

    def _run_unit(
        self, members: list[Mutation], digests: list[str], outcome: PushOutcome
    ) -> list[MutationResult]:
        """Apply one unit (a mutation, or a group) all or nothing; its results in order."""
        stored = [self.applied.get(m.id) for m in members]
        if any(s is not None for s in stored):
            # A retried unit: stored members answer ``duplicate`` (``mutation_id_reused``
            # for other content); a member never seen before cannot join a group already
            # decided (``group_rejected``).
            results = decided_results(members, stored, digests)
            outcome.rejected += sum(r.status is MutationStatus.REJECTED for r in results)
            fresh = [
                (m, r, d)
                for m, r, s, d in zip(members, results, stored, digests, strict=True)
                if s is None
            ]
            self._record(fresh)
            return results
        self._journal = {}
        counter = self.versions.last
        self._unit_versions = set()
        applied: list[MutationResult] = []
        member = members[0]
        try:
            for member in members:
                applied.append(self._apply(member))
            self.rules.check_unit(self, self._unit_writes(members))
        except Rejected as rejection:
            for key, state in self._journal.items():
                self.rows[key] = state
            self.versions.rewind(counter)
            results = rejected_results(members, rejection.mutation_id or member.id, rejection)
            outcome.rejected += len(members)
        else:
            results = applied
            outcome.applied += len(members)
        finally:
            self._journal = {}
        self._record(list(zip(members, results, digests, strict=True)))
        return results

    def _unit_writes(self, members: list[Mutation]) -> list[UnitWrite]:
        writes = []
        for m in members:
            row = self.rows.get((m.collection, m.record_id))
            if row is not None:
                writes.append(UnitWrite(m, row, self._journal.get((m.collection, m.record_id))))
        return writes

    def _record(self, results: list[tuple[Mutation, MutationResult, str]]) -> None:
        for m, result, digest in results:
            self.applied[m.id] = StoredResult(stored_json(result), digest)
            self.new_results.append((m, result))

    def next_version(self) -> int:
        version = self.versions.take()
        self._unit_versions.add(version)
        return version

    # ---- a new record, alone ---------------------------------------------------------

    def _create(self, m: Mutation, digest: str, outcome: PushOutcome) -> MutationResult | None:
        """The unit of one ungrouped upsert of a record the server never held — most of a
        bulk push — applied as :meth:`_run_unit` and :meth:`_apply` would, without their
        generality: ``None`` (nothing done) unless it is such a write and passes every
        check up to the rules (validation, placement), which then refuse it or not
        exactly as for any unit. ``tests/server/test_push_fast_path.py`` pushes batches
        both ways and compares every stored row and the answers."""
        if m.group is not None or m.op != "upsert" or m.resolves or m.id in self.applied:
            return None
        key = (m.collection, m.record_id)
        rows = self.rows
        if rows.get(key, _UNKNOWN) is not None:  # stored, written by this batch, not loaded
            return None
        place = self._creating.get(m.collection, _UNKNOWN)
        if place is _UNKNOWN:
            place = self._creating[m.collection] = self._create_plan(m.collection)
        if place is None:
            return None
        entity, owner_settable = place
        fields = dict(m.fields)
        if not entity.read_only_fields.isdisjoint(fields) or entity.validate(fields, partial=False):
            return None
        try:
            owner, customer = scope.place(
                self.schema,
                entity,
                self.principal,
                m.record_id,
                fields,
                None,
                self._row,
                owner_settable=owner_settable,
            )
        except scope.OutOfScope:
            return None
        versions = self.versions
        counter = versions.last
        version = versions.take()
        self._unit_versions = {version}
        # One (immutable) clock shared by every field (:func:`~.rows.encode_clocks`).
        record = StoredRecord(fields, dict.fromkeys(fields, FieldClock(m.hlc, version)))
        row = RowState(
            None, m.collection, m.record_id, owner, customer, version, record, self.now_ms, True
        )
        rows[key] = row
        self._journal = {key: None}
        try:
            self.rules.check_unit(self, [UnitWrite(m, row, None)])
        except Rejected as rejection:
            for touched, state in self._journal.items():
                rows[touched] = state
            versions.rewind(counter)
            result = rejected_results([m], rejection.mutation_id or m.id, rejection)[0]
            outcome.rejected += 1
        else:
            result = construct_result(
                {
                    "mutation_id": m.id,
                    "status": MutationStatus.APPLIED,
                    "version": version,
                    "error": None,
                    "conflict_ids": [],
                    "record": None,
                }
            )
            outcome.applied += 1
        finally:
            self._journal = {}
        self.applied[m.id] = StoredResult(stored_json(result), digest)
        self.new_results.append((m, result))
        return result

    def _create_plan(self, collection: str) -> tuple[EntitySchema, bool] | None:
        """What :meth:`_create` needs of ``collection`` (the entity, whether the writer
        may choose the owner of a new record), or ``None``: its writes take
        :meth:`_apply` (conflicts, an unknown collection, a role that may not write it)."""
        entity = self.schema.get(collection)
        if (
            collection == CONFLICTS
            or entity is None
            or (entity.write_roles is not None and self.principal.role not in entity.write_roles)
        ):
            return None
        settable = self._may_place(entity, entity.owner_field, None) or not _read_only(
            entity, entity.owner_field
        )
        return entity, settable

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
        self.touch((m.collection, m.record_id))
        if entity.append_only and (
            m.op == "delete" or (current is not None and not self.repointing)
        ):
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
            self._validate(entity, fields, current)
            owner, customer = self._placement(entity, m, fields, current)

        version = self.versions.peek()
        remote = current.record if current is not None else None
        if remote is None and m.op == "upsert":
            # A record the server never held: exactly merge_record's first case, without
            # its defensive deep copy (``fields`` is already this batch's own dict), and
            # one (immutable) clock shared by every field (:func:`~.rows.encode_clocks`).
            merged = MergeResult(
                StoredRecord(
                    fields=fields, clocks=dict.fromkeys(fields, FieldClock(m.hlc, version))
                ),
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
            current.version = self.next_version()
        if changed or placement_changed or record.clocks != current.record.clocks:
            current.dirty = True
        current.record = record
        current.owner_id, current.customer_id = owner, customer

        conflict_ids = [store_conflict(self, m, current, c) for c in merged.conflicts]
        if m.resolves:
            resolve_conflicts(self, m, current)

        # the protocol's one merge -> answer rule (shared with the SDK's fake server)
        return mutation_result(m.id, merged, version=current.version, conflict_ids=conflict_ids)

    def _check_visible(self, owner_id: str | None) -> None:
        if not scope.sees_owner(self.principal, owner_id):
            raise Rejected(ErrorCode.FORBIDDEN, "this record is outside your scope")

    def _validate(
        self, entity: EntitySchema, fields: dict[str, Any], current: RowState | None
    ) -> None:
        errors: list[FieldError] = []
        if not entity.read_only_fields.isdisjoint(fields):
            for name in fields:
                if name in entity.read_only_fields and not self._may_place(entity, name, current):
                    errors.append(
                        FieldError(
                            field=name, code="read_only", message=f"{name} is set by the server"
                        )
                    )
        errors.extend(entity.validate(fields, partial=current is not None))
        if errors:
            failure = ValidationFailed(f"{entity.name}: {errors[0].message}", errors=errors)
            raise Rejected(ErrorCode.VALIDATION_FAILED, failure.message, failure.details)

    def _may_place(self, entity: EntitySchema, name: str, current: RowState | None) -> bool:
        """Managers and admins choose the owner of a record they *create* (a lead for a
        rep of their team); moving an existing record is a reassignment (evictions)."""
        return (
            name == entity.owner_field
            and entity.scope is Scope.OWNER
            and current is None
            and self.principal.role in _PLACING_ROLES
        )

    def _placement(
        self,
        entity: EntitySchema,
        m: Mutation,
        fields: dict[str, Any],
        current: RowState | None,
    ) -> tuple[str | None, str | None]:
        """(owner_id, customer_id) of the record after the write (:func:`server.scope.place`)."""
        try:
            return scope.place(
                self.schema,
                entity,
                self.principal,
                m.record_id,
                fields,
                current,
                self._row,
                owner_settable=self._may_place(entity, entity.owner_field, current)
                or not _read_only(entity, entity.owner_field),
            )
        except scope.OutOfScope as refused:
            raise Rejected(ErrorCode.FORBIDDEN, refused.message, refused.details) from None

    # ---- writing -------------------------------------------------------------------

    def _flush(self) -> None:
        written = [row for row in self.rows.values() if row is not None and row.dirty]
        write_batch(
            self.conn,
            written,
            [(m, r, self.applied[m.id]) for m, r in self.new_results],
            user_id=self.principal.user_id,
            device_id=self.principal.device_id,
            now_ms=self.now_ms,
        )
        if written:
            self.rules.on_flush(self, written)
        self.versions.finish()


def stored_json(result: MutationResult) -> str:
    """``result.model_dump_json(exclude={"record"})`` — the answer kept for retries —
    written out directly for the common answer (no error, no conflicts, an id of plain
    characters: nothing to escape); anything else asks pydantic.
    ``tests/server/test_push_work.py`` holds the two equal."""
    mid, version = result.mutation_id, result.version
    if (
        result.error is None
        and not result.conflict_ids
        and mid.__class__ is str
        and _PLAIN.fullmatch(mid) is not None
        and (version is None or version.__class__ is int)
    ):
        shown = "null" if version is None else str(version)
        return (
            f'{{"mutation_id":"{mid}","status":"{result.status.value}","version":{shown},'
            '"error":null,"conflict_ids":[]}'
        )
    return result.model_dump_json(exclude={"record"})


#: Ids JSON writes as they are (the protocol's id pattern is narrower still).
_PLAIN = re.compile(r"[A-Za-z0-9_\-.:]{1,64}")


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
    repointing: bool = False,
) -> PushOutcome:
    """Apply ``mutations`` unit by unit inside the caller's transaction (which commits).

    ``digests`` are the :func:`~.units.mutation_digest` of each mutation *as the device
    sent it* — pass them when the mutations were altered since (clocks clamped), so an
    honest retry still answers ``duplicate``. By default they are taken here.
    ``repointing`` is for the server's own reference rewrites (a customer merge): updates
    of append-only events are accepted then."""
    if digests is None:
        digests = [mutation_digest(m) for m in mutations]
    begin_write(conn)
    # One block of versions for every attempt: a rerun hands out the versions of the
    # attempt it replaces (nothing was stored at them).
    versions = Versions(conn, hint=len(mutations))
    last: Exception | None = None
    for attempt in range(_ATTEMPTS):
        versions.rewind(versions.start)
        batch = PushBatch(
            conn,
            principal,
            schema,
            now_ms=now_ms,
            server_hlc=server_hlc,
            rules=rules,
            repointing=repointing,
        )
        batch.known_applied = attempt > 0
        batch.versions = versions
        savepoint = conn.begin_nested()
        try:
            outcome = batch.run(mutations, digests)
        except (Raced, DBAPIError) as exc:
            savepoint.rollback()
            if isinstance(exc, DBAPIError) and not _retryable(exc):
                raise
            last = exc
            continue
        savepoint.commit()
        if before_commit is not None:
            before_commit()
        return outcome
    # Answered 503 "busy, retry" like any lock wait that gave up; nothing was written.
    raise OperationalError("push: concurrent writes of the same rows", {}, last or Exception())


#: How often a batch is applied again after meeting a concurrent write (:class:`Raced`).
_ATTEMPTS = 5
#: PostgreSQL: deadlock detected, serialization failure — the batch may simply rerun.
_RETRY_SQLSTATES = frozenset({"40P01", "40001"})


def _retryable(exc: DBAPIError) -> bool:
    return getattr(exc.orig, "sqlstate", None) in _RETRY_SQLSTATES


__all__ = [
    "NO_RULES",
    "NoRules",
    "PushBatch",
    "PushOutcome",
    "PushRules",
    "Rejected",
    "UnitWrite",
    "apply_push",
    "conflict_id",
    "mutation_digest",
    "units_of",
]
