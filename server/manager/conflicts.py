"""``/v1/manager/conflicts``: the inbox of conflicts a person must decide, and resolving
one.

Conflicts are records of the system collection ``_conflicts`` (scoped like the record
they are about). Resolving one is an ordinary write of the conflicted record — the
chosen value, with ``resolves: [conflict id]`` — through the sync engine, exactly what a
device does: the record and the conflict (now ``resolved``) both reach every device in
scope on its next pull.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from sync_protocol import DELETED_FIELD, ErrorCode, MutationStatus, ProtocolError
from sync_protocol.messages import ID_PATTERN

from ..deps import ContextDep, SessionDep
from ..errors import NotFound
from ..repository import lock_counter
from .common import ManagerAuth, Page, error_responses
from .records import (
    CONFLICTS,
    StoredRow,
    apply_mutations,
    load_row,
    load_rows,
    make_mutation,
    raise_rejection,
    visible_row,
)

router = APIRouter(prefix="/v1/manager/conflicts", tags=["manager: conflicts"])


class ConflictOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "cf-3b1f0c",
                    "version": 57,
                    "collection": "contracts",
                    "record_id": "k-1",
                    "field": "amount",
                    "base": 100000,
                    "local": 120000,
                    "remote": 110000,
                    "device_id": "dev-7f3a",
                    "user_id": "u-rep1",
                    "status": "open",
                    "resolution": None,
                }
            ]
        }
    )

    id: str
    version: int
    collection: str
    record_id: str
    field: str
    base: Any = None
    local: Any = None
    remote: Any = None
    local_hlc: str | None = None
    remote_hlc: str | None = None
    device_id: str | None = None
    user_id: str | None = None
    status: str
    resolution: Any = None


class ConflictPage(Page):
    items: list[ConflictOut]


class ResolveConflict(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"choice": "local"}, {"choice": "value", "value": 115000}]},
    )

    choice: Literal["local", "remote", "value"]
    value: Any = Field(default=None, description="The value to keep when choice is `value`.")


def _out(row: StoredRow) -> ConflictOut:
    f = row.fields
    return ConflictOut(
        id=row.id,
        version=row.version,
        collection=str(f.get("collection", "")),
        record_id=str(f.get("record_id", "")),
        field=str(f.get("field", "")),
        base=f.get("base"),
        local=f.get("local"),
        remote=f.get("remote"),
        local_hlc=f.get("local_hlc"),
        remote_hlc=f.get("remote_hlc"),
        device_id=f.get("device_id"),
        user_id=f.get("user_id"),
        status=str(f.get("status", "open")),
        resolution=f.get("resolution"),
    )


ConflictId = Annotated[str, Path(pattern=ID_PATTERN)]


@router.get("", response_model=ConflictPage, responses=error_responses())
def list_conflicts(
    auth: ManagerAuth,
    session: SessionDep,
    status: Annotated[Literal["open", "resolved"] | None, Query()] = "open",
    collection: Annotated[str | None, Query(max_length=64)] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ConflictPage:
    """Conflicts in your scope, newest first (``status`` defaults to ``open``)."""
    rows = [
        r
        for r in load_rows(session.connection(), auth.principal, CONFLICTS)
        if (status is None or r.fields.get("status") == status)
        and (collection is None or r.fields.get("collection") == collection)
    ]
    session.rollback()
    rows.reverse()
    return ConflictPage(
        total=len(rows),
        offset=offset,
        limit=limit,
        items=[_out(r) for r in rows[offset : offset + limit]],
    )


@router.get("/{conflict_id}", response_model=ConflictOut, responses=error_responses(404))
def get_conflict(conflict_id: ConflictId, auth: ManagerAuth, session: SessionDep) -> ConflictOut:
    """One conflict with its base, local and remote values."""
    row = visible_row(session.connection(), auth.principal, CONFLICTS, conflict_id)
    session.rollback()
    return _out(row)


@router.post(
    "/{conflict_id}/resolve", response_model=ConflictOut, responses=error_responses(404, 409)
)
def resolve_conflict(
    conflict_id: ConflictId,
    body: ResolveConflict,
    auth: ManagerAuth,
    context: ContextDep,
    session: SessionDep,
) -> ConflictOut:
    """Keep the device's value (``local``), the server's (``remote``) or a new ``value``.

    The choice is written to the record like any change (devices pull it) and the
    conflict is marked resolved in the same transaction.
    """
    conn = session.connection()
    lock_counter(conn)
    conflict = visible_row(conn, auth.principal, CONFLICTS, conflict_id)
    if conflict.fields.get("status") != "open":
        raise ProtocolError(
            "this conflict is already resolved",
            code=ErrorCode.CONFLICT,
            details={"conflict": _out(conflict).model_dump(mode="json")},
        )
    collection = str(conflict.fields.get("collection"))
    record_id = str(conflict.fields.get("record_id"))
    name = str(conflict.fields.get("field"))
    record = load_row(conn, collection, record_id)
    if record is None:
        raise NotFound("the conflicted record is gone", details={"record_id": record_id})
    value = {"local": conflict.fields.get("local"), "remote": conflict.fields.get("remote")}.get(
        body.choice, body.value
    )
    if name == DELETED_FIELD:
        op = "delete" if value else "upsert"
        fields: dict[str, Any] = {}
    else:
        op, fields = "upsert", {name: value}
    mutation = make_mutation(
        context,
        collection,
        record_id,
        op=op,
        fields=fields,
        current=record,
        resolves=[conflict_id],
    )
    result = apply_mutations(conn, context, auth.principal, [mutation])[0]
    if result.status is MutationStatus.REJECTED:
        session.rollback()
        raise_rejection(result)
    resolved = load_row(conn, CONFLICTS, conflict_id)
    session.commit()
    assert resolved is not None
    return _out(resolved)
