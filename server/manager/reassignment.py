"""``/v1/manager/customers/reassign…``: move customers, with everything hanging off them,
to another rep — a list of customers, or everything of a rep who is leaving (their
customers with their records, their leads and their sales targets).

Both are one call of :func:`server.repository.reassign_customers` in one transaction:
each moved record gets a new version (the new owner's devices pull it) and every user
who no longer sees it gets an eviction (the old owner's devices drop it).
"""

from __future__ import annotations

from typing import cast

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Table, select

from sync_protocol.hlc import wall_clock_ms
from sync_protocol.messages import ID_PATTERN

from ..deps import ContextDep, SessionDep
from ..errors import Forbidden, NotFound
from ..models import Record, User
from ..repository import ReassignResult, lock_counter, reassign_customers, reassign_records
from .common import ManagerAuth, error_responses

router = APIRouter(prefix="/v1/manager/customers", tags=["manager: reassignment"])
records_t = cast(Table, Record.__table__)


class ReassignCustomers(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"customer_ids": ["c-1", "c-2"], "new_owner_id": "u-rep2"}]
        },
    )

    customer_ids: list[str] = Field(min_length=1, max_length=10_000)
    new_owner_id: str = Field(pattern=ID_PATTERN)


class ReassignOwner(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"from_owner_id": "u-rep1", "new_owner_id": "u-rep2"}]},
    )

    from_owner_id: str = Field(pattern=ID_PATTERN, description="The rep who is leaving.")
    new_owner_id: str = Field(pattern=ID_PATTERN)


class ReassignOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "customers": 2,
                    "new_owner_id": "u-rep2",
                    "moved_records": 9,
                    "evictions": 9,
                    "evicted_users": ["u-rep1"],
                }
            ]
        }
    )

    customers: int = Field(description="How many customers changed hands.")
    new_owner_id: str
    moved_records: int = Field(description="Customers plus their records, each re-versioned.")
    evictions: int
    evicted_users: list[str]
    leads: int = Field(default=0, description="Leads moved (a leaving rep's).")
    targets: int = Field(default=0, description="Sales targets moved (a leaving rep's).")


def _out(result: ReassignResult) -> ReassignOut:
    return ReassignOut(
        customers=len(result.customer_ids),
        new_owner_id=result.new_owner_id,
        moved_records=result.moved_records,
        evictions=result.evictions,
        evicted_users=result.evicted_users,
    )


@router.post("/reassign", response_model=ReassignOut, responses=error_responses(404))
def reassign(
    body: ReassignCustomers, auth: ManagerAuth, context: ContextDep, session: SessionDep
) -> ReassignOut:
    """Move the listed customers and all their records to ``new_owner_id``."""
    result = reassign_customers(
        session.connection(),
        auth.principal,
        body.customer_ids,
        body.new_owner_id,
        now_ms=wall_clock_ms(),
        server_hlc=context.clock.now,
    )
    session.commit()
    return _out(result)


@router.post("/reassign-owner", response_model=ReassignOut, responses=error_responses(404))
def reassign_owner(
    body: ReassignOwner, auth: ManagerAuth, context: ContextDep, session: SessionDep
) -> ReassignOut:
    """A rep leaves: their customers (with every record of them), leads and sales targets
    move in one operation."""
    if session.get(User, body.from_owner_id) is None:
        raise NotFound(f"no user {body.from_owner_id!r}", details={"user_id": body.from_owner_id})
    if not auth.principal.sees_owner(body.from_owner_id):
        raise Forbidden("that rep is not in your team")
    conn = session.connection()
    lock_counter(conn)  # no record of theirs can be created between listing and moving
    owned = {
        collection: list(
            conn.execute(
                select(records_t.c.record_id).where(
                    records_t.c.collection == collection,
                    records_t.c.owner_id == body.from_owner_id,
                    records_t.c.deleted.is_(False),
                )
            ).scalars()
        )
        for collection in ("customers", "leads", "sales_targets")
    }
    out = ReassignOut(
        customers=0, new_owner_id=body.new_owner_id, moved_records=0, evictions=0, evicted_users=[]
    )
    evicted: set[str] = set()
    for collection, ids in owned.items():
        if not ids:
            continue
        if collection == "customers":
            result = reassign_customers(
                conn,
                auth.principal,
                ids,
                body.new_owner_id,
                now_ms=wall_clock_ms(),
                server_hlc=context.clock.now,
            )
            out.customers = len(result.customer_ids)
        else:
            result = reassign_records(
                conn,
                auth.principal,
                collection,
                ids,
                body.new_owner_id,
                now_ms=wall_clock_ms(),
                server_hlc=context.clock.now,
            )
            if collection == "leads":
                out.leads = result.moved_records
            else:
                out.targets = result.moved_records
        out.moved_records += result.moved_records
        out.evictions += result.evictions
        evicted.update(result.evicted_users)
    out.evicted_users = sorted(evicted)
    session.commit()
    return out
