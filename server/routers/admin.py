"""``/v1/admin``: the server-side operations of the sync engine (reassignment).

The wider manager API (users, devices, reports, conflicts) lives in its own routers;
this one holds what needs the sync engine's counter lock.
"""

from __future__ import annotations

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from sync_protocol.hlc import wall_clock_ms
from sync_protocol.messages import ID_PATTERN

from ..deps import ContextDep, CurrentAuth, SessionDep
from ..errors import Forbidden
from ..openapi import error_responses
from ..repository import reassign_customers, reassign_owned

router = APIRouter(prefix="/v1/admin", tags=["admin"])


class ReassignRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_ids: list[str] = Field(min_length=1, max_length=10_000)
    new_owner_id: str = Field(min_length=1, max_length=64)


class ReassignResponse(BaseModel):
    customer_ids: list[str]
    new_owner_id: str
    moved_records: int
    evictions: int
    evicted_users: list[str]


@router.post(
    "/customers/reassign", response_model=ReassignResponse, responses=error_responses(403, 404)
)
def reassign(
    body: ReassignRequest, auth: CurrentAuth, context: ContextDep, session: SessionDep
) -> ReassignResponse:
    """Move customers and everything hanging off them to another owner.

    The new owner's devices receive the records on their next pull; the old owner's
    (and the old team manager's, across teams) receive evictions.
    """
    if auth.principal.role not in ("manager", "admin"):
        raise Forbidden("only managers and admins reassign customers")
    result = reassign_customers(
        session.connection(),
        auth.principal,
        body.customer_ids,
        body.new_owner_id,
        now_ms=wall_clock_ms(),
        server_hlc=context.clock.now,
    )
    session.commit()
    return ReassignResponse(
        customer_ids=result.customer_ids,
        new_owner_id=result.new_owner_id,
        moved_records=result.moved_records,
        evictions=result.evictions,
        evicted_users=result.evicted_users,
    )


class ReassignRecordsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    record_ids: list[str] = Field(min_length=1, max_length=10_000)
    new_owner_id: str = Field(min_length=1, max_length=64)


class ReassignRecordsResponse(BaseModel):
    collection: str
    record_ids: list[str]
    new_owner_id: str
    moved_records: int
    evictions: int
    evicted_users: list[str]


@router.post(
    "/records/{collection}/reassign",
    response_model=ReassignRecordsResponse,
    responses=error_responses(403, 404),
)
def reassign_records_of(
    body: ReassignRecordsRequest,
    auth: CurrentAuth,
    context: ContextDep,
    session: SessionDep,
    collection: str = Path(pattern=ID_PATTERN, max_length=64),
) -> ReassignRecordsResponse:
    """Move records of an ``owner``-scoped collection of the served schema — with every
    record that inherits its scope from them — to another owner (any schema: the
    developer's as well as the CRM's). Evictions as for customers."""
    result = reassign_owned(
        session.connection(),
        auth.principal,
        context.schema,
        collection,
        body.record_ids,
        body.new_owner_id,
        now_ms=wall_clock_ms(),
        server_hlc=context.clock.now,
    )
    session.commit()
    return ReassignRecordsResponse(
        collection=collection,
        record_ids=result.customer_ids,
        new_owner_id=result.new_owner_id,
        moved_records=result.moved_records,
        evictions=result.evictions,
        evicted_users=result.evicted_users,
    )
