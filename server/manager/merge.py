"""``POST /v1/manager/customers/merge``: merge two customers into one (合并客户).

One transaction, in this order:

1. **Placement.** When the loser belongs to another rep, it is first reassigned with
   everything hanging off it to the survivor's owner (:func:`reassign_customers`): the
   old owner's devices get evictions, so nothing of the loser stays on a phone that may
   no longer see it.
2. **Re-pointing.** Every live record that names the loser — every child whose
   ``customer_id`` is the loser, and any other reference to ``customers`` (a lead's
   ``converted_customer_id``, a campaign member's ``customer_id`` …) — is written with
   the survivor's id, through the sync engine like any write.
3. **Loser deleted, survivor updated** in one group: the loser becomes a tombstone
   (devices drop it), the survivor takes the loser's values for fields it lacks, the
   union of both tags, both notes, and finally the ``fields`` the caller chose.

The survivor's update is saved with the ``possible_duplicate`` override (the loser is
the duplicate being removed). Answers the survivor and how many records moved per
collection; audited as ``customer.merge``.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, cast

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, Table, insert, select

from sync_protocol import ErrorCode, FieldType, ProtocolError, Scope
from sync_protocol.hlc import wall_clock_ms
from sync_protocol.messages import ID_PATTERN

from ..accounts import Principal
from ..context import ServerContext
from ..deps import ContextDep, SessionDep
from ..models import AuditEntry, Record
from ..repository import lock_counter, reassign_customers
from .common import ManagerAuth, RecordOut, error_responses
from .records import (
    StoredRow,
    apply_group,
    apply_mutations,
    load_row,
    make_mutation,
    raise_rejection,
    visible_row,
)

router = APIRouter(prefix="/v1/manager/customers", tags=["manager: data quality"])
records_t = cast(Table, Record.__table__)
audit_t = cast(Table, AuditEntry.__table__)
CUSTOMERS = "customers"
_CHUNK = 200


class MergeCustomers(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"survivor_id": "c-1", "loser_id": "c-2", "fields": {"phone": "+86 139 0000 0002"}}
            ]
        },
    )

    survivor_id: str = Field(pattern=ID_PATTERN, description="The customer that stays.")
    loser_id: str = Field(pattern=ID_PATTERN, description="The customer merged away.")
    fields: dict[str, Any] = Field(
        default_factory=dict, description="Values to set on the survivor (the user's choices)."
    )


class MergeOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "survivor": {
                        "id": "c-1",
                        "collection": "customers",
                        "version": 90,
                        "owner_id": "u-rep1",
                        "fields": {"name": "张三", "status": "intent"},
                    },
                    "loser_id": "c-2",
                    "moved": {"contacts": 2, "activities": 5},
                    "reassigned": True,
                }
            ]
        }
    )

    survivor: RecordOut
    loser_id: str
    moved: dict[str, int] = Field(description="Records re-pointed to the survivor, per entity.")
    reassigned: bool = Field(description="The loser first moved to the survivor's owner.")


def merged_fields(survivor: StoredRow, loser: StoredRow, chosen: dict[str, Any]) -> dict[str, Any]:
    """The survivor's patch: the loser's values where the survivor has none, tags united,
    notes appended, then the caller's choices."""
    patch: dict[str, Any] = {}
    for name, value in loser.fields.items():
        if name in ("owner_id", "tags", "notes") or value in (None, "", [], {}):
            continue
        if survivor.fields.get(name) in (None, "", [], {}):
            patch[name] = value
    tags = list(
        dict.fromkeys([*(survivor.fields.get("tags") or []), *(loser.fields.get("tags") or [])])
    )
    if tags != (survivor.fields.get("tags") or []):
        patch["tags"] = tags[:100]
    notes = [n for n in (survivor.fields.get("notes"), loser.fields.get("notes")) if n]
    if loser.fields.get("notes"):
        patch["notes"] = "\n".join(notes)
    return {**patch, **chosen}


def _referrers(conn: Connection, context: ServerContext, loser_id: str) -> list[tuple[str, str]]:
    """(collection, field) of every live record that points to the loser."""
    found: list[tuple[str, str]] = []
    children = select(records_t.c.collection, records_t.c.record_id).where(
        records_t.c.customer_id == loser_id,
        records_t.c.collection != CUSTOMERS,
        records_t.c.deleted.is_(False),
    )
    for row in conn.execute(children):
        entity = context.schema.get(row.collection)
        if entity is not None and entity.scope is Scope.CUSTOMER:
            found.append((row.collection, row.record_id))
    for entity in context.schema.entities.values():
        if entity.scope is Scope.CUSTOMER:
            continue  # moved above with their customer_id
        for name, spec in entity.fields.items():
            if spec.type is not FieldType.REF or spec.ref != CUSTOMERS:
                continue
            needle = f'%"{name}":{json.dumps(loser_id)}%'
            stmt = select(records_t.c.record_id).where(
                records_t.c.collection == entity.name,
                records_t.c.deleted.is_(False),
                records_t.c.data.like(needle),
            )
            found.extend((entity.name, rid) for rid in conn.execute(stmt).scalars())
    return sorted(set(found))


def _field_pointing(context: ServerContext, collection: str, row: StoredRow, loser: str) -> str:
    entity = context.schema[collection]
    if entity.scope is Scope.CUSTOMER:
        return entity.customer_field
    for name, spec in entity.fields.items():
        if spec.type is FieldType.REF and spec.ref == CUSTOMERS and row.fields.get(name) == loser:
            return name
    return entity.customer_field


def merge_customers(
    conn: Connection, context: ServerContext, principal: Principal, body: MergeCustomers
) -> MergeOut:
    lock_counter(conn)
    survivor = visible_row(conn, principal, CUSTOMERS, body.survivor_id)
    loser = visible_row(conn, principal, CUSTOMERS, body.loser_id)
    if survivor.id == loser.id:
        raise ProtocolError(
            "a customer cannot be merged into itself",
            code=ErrorCode.CONFLICT,
            details={"survivor_id": survivor.id, "loser_id": loser.id},
        )
    reassigned = False
    if loser.owner_id != survivor.owner_id and survivor.owner_id is not None:
        reassign_customers(
            conn,
            principal,
            [loser.id],
            survivor.owner_id,
            now_ms=wall_clock_ms(),
            server_hlc=context.clock.now,
        )
        reassigned = True
    moved: Counter[str] = Counter()
    referrers = _referrers(conn, context, loser.id)
    for start in range(0, len(referrers), _CHUNK):
        mutations = []
        for collection, rid in referrers[start : start + _CHUNK]:
            row = load_row(conn, collection, rid)
            if row is None:
                continue
            name = _field_pointing(context, collection, row, loser.id)
            mutations.append(
                make_mutation(context, collection, rid, fields={name: survivor.id}, current=row)
            )
            moved[collection] += 1
        for result in apply_mutations(conn, context, principal, mutations, repointing=True):
            raise_rejection(result)
    loser = load_row(conn, CUSTOMERS, loser.id) or loser
    patch = merged_fields(survivor, loser, body.fields)
    apply_group(
        conn,
        context,
        principal,
        [
            make_mutation(context, CUSTOMERS, loser.id, op="delete", current=loser),
            make_mutation(
                context,
                CUSTOMERS,
                survivor.id,
                fields=patch,
                current=survivor,
                override=("possible_duplicate",),
            ),
        ],
    )
    conn.execute(
        insert(audit_t).values(
            at_ms=wall_clock_ms(),
            user_id=principal.user_id,
            device_id=principal.device_id,
            action="customer.merge",
            target=f"customers/{survivor.id}",
            details=json.dumps({"loser_id": loser.id, "moved": dict(moved)}),
        )
    )
    after = load_row(conn, CUSTOMERS, survivor.id)
    assert after is not None
    return MergeOut(
        survivor=after.out(), loser_id=loser.id, moved=dict(moved), reassigned=reassigned
    )


@router.post("/merge", response_model=MergeOut, responses=error_responses(404, 409))
def merge(
    body: MergeCustomers, auth: ManagerAuth, context: ContextDep, session: SessionDep
) -> MergeOut:
    """Merge ``loser_id`` into ``survivor_id``: children re-pointed, the loser deleted
    (devices drop it), the survivor completed — in one transaction."""
    out = merge_customers(session.connection(), context, auth.principal, body)
    session.commit()
    return out
