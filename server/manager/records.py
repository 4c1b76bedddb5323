"""Reading the records a manager may see, and writing them through the sync engine.

**Reads** decode the stored canonical JSON of every live record of a collection in the
caller's scope (the team's owners plus reference data; everything for an admin) and
filter, search, sort and slice in Python. That is deliberately simple: a team's data is
thousands of rows, and doing it in Python keeps one code path for SQLite and PostgreSQL
and for JSON fields that neither database indexes.

**Writes** are pushes. A manager's create, update or delete becomes one
:class:`~sync_protocol.Mutation` with a server-side id (``srv-…``) and an HLC from the
server clock, applied by :func:`server.repository.apply_push` exactly like a device's
write: it is validated against the entity schema, scope-checked, merged, versioned,
audit-logged, and reaches every device in scope on its next pull. The optimistic
precondition (``If-Match`` / ``base_version``) is checked *after* locking the version
counter, in the same transaction, so no write can slip in between check and apply.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Table, select
from sqlalchemy.orm import Session

from sync_protocol import (
    ErrorCode,
    Mutation,
    MutationResult,
    MutationStatus,
    ProtocolError,
    Scope,
    ValidationFailed,
)
from sync_protocol.errors import FieldError
from sync_protocol.hlc import wall_clock_ms

from ..accounts import Principal
from ..context import ServerContext
from ..errors import NotFound
from ..models import Record
from ..repository import apply_push, lock_counter, reassign_customers
from ..repository.rows import CONFLICTS
from ..scope import owner_filter
from .common import RecordOut

records_t = cast(Table, Record.__table__)

_COLUMNS = (
    records_t.c.record_id,
    records_t.c.collection,
    records_t.c.owner_id,
    records_t.c.customer_id,
    records_t.c.version,
    records_t.c.deleted,
    records_t.c.data,
    records_t.c.updated_at_ms,
    records_t.c.updated_by,
    records_t.c.created_at_ms,
)


@dataclass(slots=True)
class StoredRow:
    """A decoded record row."""

    id: str
    collection: str
    owner_id: str | None
    customer_id: str | None
    version: int
    deleted: bool
    fields: dict[str, Any]
    updated_at_ms: int | None
    updated_by: str | None
    created_at_ms: int | None

    def out(self) -> RecordOut:
        return RecordOut(
            id=self.id,
            collection=self.collection,
            version=self.version,
            owner_id=self.owner_id,
            customer_id=self.customer_id,
            deleted=self.deleted,
            updated_at_ms=self.updated_at_ms,
            updated_by=self.updated_by,
            fields=self.fields,
        )


def _decode(row: Any) -> StoredRow:
    return StoredRow(
        id=row.record_id,
        collection=row.collection,
        owner_id=row.owner_id,
        customer_id=row.customer_id,
        version=int(row.version),
        deleted=bool(row.deleted),
        fields=json.loads(row.data) if row.data else {},
        updated_at_ms=row.updated_at_ms,
        updated_by=row.updated_by,
        created_at_ms=row.created_at_ms,
    )


def scope_owners(principal: Principal) -> list[str] | None:
    """Owners whose records the caller sees; ``None`` means every owner (admin)."""
    if principal.role == "admin":
        return None
    return sorted(principal.team_member_ids | {principal.user_id})


def load_rows(
    conn: Connection,
    principal: Principal,
    collection: str,
    *,
    include_deleted: bool = False,
) -> list[StoredRow]:
    """Every record of ``collection`` in the caller's scope, decoded, in version order."""
    stmt = select(*_COLUMNS).where(records_t.c.collection == collection)
    stmt = stmt.where(owner_filter(principal, records_t.c.owner_id))
    if not include_deleted:
        stmt = stmt.where(records_t.c.deleted.is_(False))
    return [_decode(r) for r in conn.execute(stmt.order_by(records_t.c.version))]


def load_row(conn: Connection, collection: str, record_id: str) -> StoredRow | None:
    row = conn.execute(
        select(*_COLUMNS).where(
            records_t.c.collection == collection, records_t.c.record_id == record_id
        )
    ).one_or_none()
    return _decode(row) if row is not None else None


def visible_row(
    conn: Connection, principal: Principal, collection: str, record_id: str
) -> StoredRow:
    """The live record, or ``404`` (also when it exists outside the caller's scope)."""
    row = load_row(conn, collection, record_id)
    if row is None or row.deleted or not principal.sees_owner(row.owner_id):
        raise NotFound(
            f"no {collection} record {record_id!r}",
            details={"collection": collection, "id": record_id},
        )
    return row


# ---- filtering -----------------------------------------------------------------------


def parse_filters(raw: Sequence[str]) -> list[tuple[str, str]]:
    """``["status:intent", "tier:high"]`` → pairs; a term without ``:`` is malformed."""
    pairs: list[tuple[str, str]] = []
    errors: list[FieldError] = []
    for term in raw:
        name, sep, value = term.partition(":")
        if not sep or not name:
            errors.append(
                FieldError(field="filter", code="invalid", message=f"{term!r} is not field:value")
            )
            continue
        pairs.append((name, value))
    if errors:
        raise ValidationFailed("a filter is malformed", errors=errors)
    return pairs


def value_matches(value: Any, raw: str) -> bool:
    """Equality between a JSON field value and a query-string value."""
    if value is None:
        return raw in ("", "null")
    if isinstance(value, bool):
        return raw.lower() == ("true" if value else "false")
    if isinstance(value, int | float):
        try:
            return float(raw) == float(value)
        except ValueError:
            return False
    if isinstance(value, list):
        return raw in value
    if isinstance(value, str):
        return value == raw
    return json.dumps(value, sort_keys=True, ensure_ascii=False) == raw


def _field(row: StoredRow, name: str) -> Any:
    if name == "id":
        return row.id
    if name == "version":
        return row.version
    if name == "owner_id" and "owner_id" not in row.fields:
        return row.owner_id
    return row.fields.get(name)


def select_rows(
    rows: Iterable[StoredRow],
    *,
    filters: Sequence[tuple[str, str]] = (),
    search: str | None = None,
    search_fields: Sequence[str] = (),
    owner_id: str | None = None,
    sort: str | None = None,
) -> list[StoredRow]:
    """Filter (every pair must match), search (casefolded substring), then sort."""
    needle = search.casefold().strip() if search else ""
    picked: list[StoredRow] = []
    for row in rows:
        if owner_id is not None and row.owner_id != owner_id:
            continue
        if any(not value_matches(_field(row, n), v) for n, v in filters):
            continue
        if needle:
            names = search_fields or [k for k, v in row.fields.items() if isinstance(v, str)]
            hay = " ".join(str(row.fields.get(n) or "") for n in names).casefold()
            if needle not in hay:
                continue
        picked.append(row)
    if sort:
        descending = sort.startswith("-")
        name = sort.lstrip("-")
        present = [r for r in picked if _field(r, name) is not None]
        absent = [r for r in picked if _field(r, name) is None]
        present.sort(key=lambda r: _sort_key(_field(r, name)), reverse=descending)
        picked = present + absent  # missing values last, whichever the direction
    return picked


def _sort_key(value: Any) -> tuple[int, Any]:
    if isinstance(value, bool):
        return (0, int(value))
    if isinstance(value, int | float):
        return (0, value)
    if isinstance(value, str):
        return (1, value)
    return (2, json.dumps(value, sort_keys=True))


# ---- writing -------------------------------------------------------------------------


class PreconditionFailed(ProtocolError):
    """The record changed since the version the write was based on (HTTP 412)."""

    code = ErrorCode.PRECONDITION_FAILED


def new_record_id() -> str:
    return f"r-{uuid.uuid4().hex}"


def server_mutation_id() -> str:
    return f"srv-{uuid.uuid4().hex}"


@dataclass(slots=True)
class WriteOutcome:
    result: MutationResult
    row: StoredRow | None


def raise_rejection(result: MutationResult) -> None:
    """Turn a per-mutation rejection into the HTTP error it stands for."""
    if result.status is MutationStatus.REJECTED and result.error is not None:
        error = result.error
        raise ProtocolError(error.message, code=error.code, details=dict(error.details))


def apply_mutations(
    conn: Connection,
    context: ServerContext,
    principal: Principal,
    mutations: Sequence[Mutation],
    *,
    repointing: bool = False,
) -> list[MutationResult]:
    """Apply server-made mutations through the sync engine (caller commits);
    ``repointing``: the server rewrites references (append-only events included)."""
    outcome = apply_push(
        conn,
        principal,
        context.schema,
        mutations,
        now_ms=wall_clock_ms(),
        server_hlc=context.clock.now,
        rules=context.rules,
        repointing=repointing,
    )
    return outcome.results


def apply_group(
    conn: Connection,
    context: ServerContext,
    principal: Principal,
    mutations: Sequence[Mutation],
) -> list[MutationResult]:
    """Apply server-made mutations as one group (all or nothing, caller commits); a
    refusal raises the failing member's own error (not its ``group_rejected`` echoes)."""
    group = f"srv-{uuid.uuid4().hex}"
    grouped = [m.model_copy(update={"group": group}) for m in mutations]
    results = apply_mutations(conn, context, principal, grouped)
    for result in results:
        if result.error is not None and result.error.code is not ErrorCode.GROUP_REJECTED:
            raise_rejection(result)
    return results


def make_mutation(
    context: ServerContext,
    collection: str,
    record_id: str,
    *,
    op: str = "upsert",
    fields: dict[str, Any] | None = None,
    current: StoredRow | None = None,
    resolves: list[str] | None = None,
    group: str | None = None,
    override: Sequence[str] = (),
) -> Mutation:
    fields = dict(fields or {})
    base = {k: current.fields.get(k) for k in fields} if current is not None else None
    return Mutation(
        id=server_mutation_id(),
        collection=collection,
        record_id=record_id,
        op=op,  # type: ignore[arg-type]
        fields=fields,
        base=base,
        base_version=current.version if current is not None else None,
        hlc=context.clock.now(),
        resolves=resolves,
        group=group,
        override=list(override) or None,  # type: ignore[arg-type]
    )


def write_record(
    session: Session,
    context: ServerContext,
    principal: Principal,
    collection: str,
    record_id: str,
    *,
    op: str,
    fields: dict[str, Any] | None = None,
    base_version: int | None = None,
    creating: bool = False,
    new_owner_id: str | None = None,
    override: Sequence[str] = (),
) -> WriteOutcome:
    """One manager write, versioned like a device's push; commits on success.

    ``creating`` refuses an id that already exists (409); otherwise the record must
    exist and be visible (404). ``base_version`` (when given) must equal the record's
    current version, or the write is refused with 412 and ``details.current``.
    ``new_owner_id`` places a new owner-scoped record (a lead for a rep) or moves a
    customer with everything hanging off it.
    """
    entity = context.schema.get(collection)
    if new_owner_id is not None and (entity is None or entity.scope is not Scope.OWNER):
        raise ValidationFailed(
            "owner_id is set only on owner-scoped records (customers, leads, targets)",
            errors=[FieldError(field="owner_id", code="not_allowed", message="not owner-scoped")],
        )
    if creating and new_owner_id is not None and entity is not None:
        fields = {**(fields or {}), entity.owner_field: new_owner_id}
    conn = session.connection()
    lock_counter(conn)  # serialise with every other writer before the precondition check
    current = load_row(conn, collection, record_id)
    if creating:
        if current is not None and not current.deleted:
            raise ProtocolError(
                f"{collection} record {record_id!r} already exists",
                code=ErrorCode.CONFLICT,
                details={"id": record_id},
            )
    elif current is None or current.deleted or not principal.sees_owner(current.owner_id):
        raise NotFound(
            f"no {collection} record {record_id!r}",
            details={"collection": collection, "id": record_id},
        )
    if base_version is not None and current is not None and current.version != base_version:
        raise PreconditionFailed(
            f"the record changed since version {base_version}",
            details={"current": current.out().model_dump(mode="json")},
        )
    mutation = make_mutation(
        context, collection, record_id, op=op, fields=fields, current=current, override=override
    )
    result = apply_mutations(conn, context, principal, [mutation])[0]
    if result.status is MutationStatus.REJECTED:
        session.rollback()
        raise_rejection(result)
    if new_owner_id is not None and collection == "customers" and not creating:
        row = load_row(conn, collection, record_id)
        if row is not None and row.owner_id != new_owner_id:
            reassign_customers(
                conn,
                principal,
                [record_id],
                new_owner_id,
                now_ms=wall_clock_ms(),
                server_hlc=context.clock.now,
            )
    row = load_row(conn, collection, record_id)
    session.commit()
    return WriteOutcome(result, row)


__all__ = [
    "CONFLICTS",
    "PreconditionFailed",
    "StoredRow",
    "WriteOutcome",
    "apply_group",
    "apply_mutations",
    "load_row",
    "load_rows",
    "make_mutation",
    "new_record_id",
    "parse_filters",
    "scope_owners",
    "select_rows",
    "value_matches",
    "visible_row",
    "write_record",
]
