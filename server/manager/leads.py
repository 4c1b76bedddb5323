"""``/v1/manager/leads/{id}/convert``: convert a lead in one atomic operation.

The conversion is the same group of writes a device sends offline
(:func:`sync_protocol.leads.plan_conversion`): a customer (unless converting into an
existing one), a contact, optionally an opportunity, and the lead marked ``converted``
with links to all of them — applied through the sync engine as one group, so every
phone in scope pulls the result and nothing is half done. The new customer belongs to
the lead's owner. A new customer that looks like an existing one answers 409
``possible_duplicate`` (``details.matches``); send ``override: ["possible_duplicate"]``
to create it anyway, or ``existing_customer_id`` to convert into the match.

**Assignment** (``/v1/manager/leads/reassign``, ``/v1/manager/leads/assign``): leads move
to a rep of the caller's team — a list to one rep, or spread round-robin over the
team's reps (the least loaded first). Scope follows the assignee: the new owner's
phones pull the lead, everyone who no longer sees it gets an eviction
(:func:`server.repository.reassign_records`). Service functions for other surfaces
(the console): :func:`reassign_leads`, :func:`assign_round_robin`.

Creating leads for a rep (``owner_id`` on ``POST /v1/manager/records/leads``) and the
CSV import (``POST /v1/manager/import/leads``) are the generic record routes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, cast

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, Table, select

from sync_protocol import ValidationFailed
from sync_protocol.errors import FieldError
from sync_protocol.hlc import wall_clock_ms
from sync_protocol.leads import CONVERTED, plan_conversion
from sync_protocol.messages import ID_PATTERN

from ..accounts import Principal
from ..context import ServerContext
from ..deps import ContextDep, SessionDep
from ..errors import Forbidden, NotFound
from ..models import Record, User
from ..repository import lock_counter, reassign_records
from .common import ManagerAuth, RecordOut, error_responses
from .records import apply_group, load_row, make_mutation, new_record_id, visible_row

router = APIRouter(prefix="/v1/manager/leads", tags=["manager: leads"])

LeadId = Annotated[str, Path(pattern=ID_PATTERN, description="The lead's id.")]


class ConvertLead(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "customer": {"status": "intent", "tier": "mid"},
                    "opportunity": {
                        "name": "扫地机器人 200 台",
                        "stage_id": "stage-lead",
                        "amount": 380000,
                    },
                }
            ]
        },
    )

    customer: dict[str, Any] = Field(
        default_factory=dict,
        description="Fields of the new customer overriding those copied from the lead.",
    )
    existing_customer_id: str | None = Field(
        default=None,
        pattern=ID_PATTERN,
        description="Convert into this existing customer instead of creating one.",
    )
    contact: bool = Field(default=True, description="Create a contact from the lead's person.")
    opportunity: dict[str, Any] | None = Field(
        default=None,
        description="Create an opportunity with these fields (at least `stage_id`).",
    )
    override: list[Literal["possible_duplicate"]] = Field(
        default_factory=list,
        description="`possible_duplicate`: create the customer even if it matches another.",
    )


class ConversionOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "lead": {
                        "id": "l-1",
                        "collection": "leads",
                        "version": 120,
                        "owner_id": "u-rep1",
                        "fields": {"name": "王五", "status": "converted"},
                    },
                    "customer_id": "r-9f1c",
                    "contact_id": "r-9f1d",
                    "opportunity_id": "r-9f1e",
                    "existing_customer": False,
                }
            ]
        }
    )

    lead: RecordOut
    customer_id: str
    contact_id: str | None
    opportunity_id: str | None
    existing_customer: bool


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@router.post(
    "/{lead_id}/convert",
    response_model=ConversionOut,
    responses=error_responses(404, 409),
)
def convert_lead(
    lead_id: LeadId,
    body: ConvertLead,
    auth: ManagerAuth,
    context: ContextDep,
    session: SessionDep,
) -> ConversionOut:
    """Convert a lead: customer + contact (+ opportunity) created, the lead linked back —
    all or nothing. 409 ``possible_duplicate`` when the customer looks like another."""
    conn = session.connection()
    lock_counter(conn)
    lead = visible_row(conn, auth.principal, "leads", lead_id)
    if lead.fields.get("status") == CONVERTED:
        raise ValidationFailed(
            "the lead is already converted",
            errors=[FieldError(field="status", code="already_converted", message="converted")],
        )
    existing = body.existing_customer_id is not None
    customer_id = body.existing_customer_id or new_record_id()
    if existing:
        visible_row(conn, auth.principal, "customers", customer_id)
    try:
        plan = plan_conversion(
            lead_id,
            lead.fields,
            customer_id=customer_id,
            converted_at=_now_iso(),
            contact_id=new_record_id() if body.contact else None,
            opportunity_id=new_record_id() if body.opportunity is not None else None,
            customer={**body.customer, "owner_id": lead.owner_id},
            opportunity=body.opportunity,
            existing_customer=existing,
        )
    except ValueError as exc:
        raise ValidationFailed(
            str(exc), errors=[FieldError(field="opportunity", code="invalid", message=str(exc))]
        ) from exc
    mutations = [
        make_mutation(
            context,
            w.collection,
            w.record_id,
            fields=w.fields,
            current=lead if w.collection == "leads" else None,
            override=body.override if w.collection == "customers" else (),
        )
        for w in plan.writes
    ]
    apply_group(conn, context, auth.principal, mutations)
    row = load_row(conn, "leads", lead_id)
    session.commit()
    assert row is not None
    return ConversionOut(
        lead=row.out(),
        customer_id=plan.customer_id,
        contact_id=plan.contact_id,
        opportunity_id=plan.opportunity_id,
        existing_customer=plan.existing_customer,
    )


# ---- assignment ------------------------------------------------------------------------

records_t = cast(Table, Record.__table__)
#: Leads still being worked: what "load" counts when spreading new ones.
OPEN_LEAD_STATUSES = ("new", "contacted", "qualified")


class ReassignLeads(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"lead_ids": ["l-1", "l-2"], "new_owner_id": "u-rep2"}]},
    )

    lead_ids: list[Annotated[str, Field(pattern=ID_PATTERN)]] = Field(
        min_length=1, max_length=10_000
    )
    new_owner_id: str = Field(pattern=ID_PATTERN)


class AssignLeads(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"lead_ids": ["l-1", "l-2", "l-3"]}]},
    )

    lead_ids: list[Annotated[str, Field(pattern=ID_PATTERN)]] = Field(
        min_length=1, max_length=10_000
    )
    rep_ids: list[Annotated[str, Field(pattern=ID_PATTERN)]] | None = Field(
        default=None,
        max_length=1000,
        description="The reps to spread over (default: every active rep of your team).",
    )


class LeadAssignment(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "assignments": {"l-1": "u-rep1", "l-2": "u-rep2"},
                    "moved": 2,
                    "evictions": 2,
                    "evicted_users": ["u-rep3"],
                }
            ]
        }
    )

    assignments: dict[str, str] = Field(description="Each lead and its owner now.")
    moved: int
    evictions: int
    evicted_users: list[str]


def reassign_leads(
    conn: Connection,
    context: ServerContext,
    principal: Principal,
    lead_ids: list[str],
    new_owner_id: str,
) -> LeadAssignment:
    """Give ``lead_ids`` to ``new_owner_id`` (the caller commits)."""
    result = reassign_records(
        conn,
        principal,
        "leads",
        lead_ids,
        new_owner_id,
        now_ms=wall_clock_ms(),
        server_hlc=context.clock.now,
    )
    return LeadAssignment(
        assignments={lid: new_owner_id for lid in result.customer_ids},
        moved=result.moved_records,
        evictions=result.evictions,
        evicted_users=result.evicted_users,
    )


def _team_reps(conn: Connection, principal: Principal) -> list[str]:
    if principal.team_id is None:
        raise Forbidden("you lead no team: name the reps (rep_ids)")
    users_t = cast(Table, User.__table__)
    return sorted(
        conn.execute(
            select(users_t.c.id).where(
                users_t.c.team_id == principal.team_id,
                users_t.c.role == "rep",
                users_t.c.active.is_(True),
            )
        ).scalars()
    )


def _open_leads(conn: Connection, reps: list[str]) -> dict[str, int]:
    """How many open leads each rep holds (the team's leads: a bounded read)."""
    load = dict.fromkeys(reps, 0)
    for owner, data in conn.execute(
        select(records_t.c.owner_id, records_t.c.data).where(
            records_t.c.collection == "leads",
            records_t.c.deleted.is_(False),
            records_t.c.owner_id.in_(reps),
        )
    ):
        if json.loads(data or "{}").get("status") in OPEN_LEAD_STATUSES:
            load[owner] += 1
    return load


def assign_round_robin(
    conn: Connection,
    context: ServerContext,
    principal: Principal,
    lead_ids: list[str],
    rep_ids: list[str] | None = None,
) -> LeadAssignment:
    """Spread ``lead_ids`` over ``rep_ids`` (default: the caller's team's active reps) in
    turn, starting with the rep with the fewest open leads (the caller commits)."""
    reps = sorted(set(rep_ids)) if rep_ids else _team_reps(conn, principal)
    if not reps:
        raise NotFound("no rep to assign leads to", details={"rep_ids": rep_ids or []})
    for rep in reps:
        if conn.execute(select(User.id).where(User.id == rep)).first() is None:
            raise NotFound(f"no user {rep!r}", details={"user_id": rep})
        if not principal.sees_owner(rep):
            raise Forbidden("a rep is not in your team", details={"user_id": rep})
    lock_counter(conn)
    load = _open_leads(conn, reps)
    order = sorted(reps, key=lambda r: (load[r], r))
    ids = list(dict.fromkeys(lead_ids))
    plan: dict[str, list[str]] = {}
    for i, lid in enumerate(ids):
        plan.setdefault(order[i % len(order)], []).append(lid)
    out = LeadAssignment(assignments={}, moved=0, evictions=0, evicted_users=[])
    evicted: set[str] = set()
    for rep, mine in plan.items():
        part = reassign_leads(conn, context, principal, mine, rep)
        out.assignments.update(part.assignments)
        out.moved += part.moved
        out.evictions += part.evictions
        evicted.update(part.evicted_users)
    out.evicted_users = sorted(evicted)
    out.assignments = {lid: out.assignments[lid] for lid in ids}
    return out


@router.post("/reassign", response_model=LeadAssignment, responses=error_responses(404))
def post_reassign(
    body: ReassignLeads, auth: ManagerAuth, context: ContextDep, session: SessionDep
) -> LeadAssignment:
    """Give the listed leads to one rep of your team (their phones follow)."""
    out = reassign_leads(
        session.connection(), context, auth.principal, body.lead_ids, body.new_owner_id
    )
    session.commit()
    return out


@router.post("/assign", response_model=LeadAssignment, responses=error_responses(404))
def post_assign(
    body: AssignLeads, auth: ManagerAuth, context: ContextDep, session: SessionDep
) -> LeadAssignment:
    """Spread the listed leads round-robin over your team's reps, least loaded first."""
    out = assign_round_robin(
        session.connection(), context, auth.principal, body.lead_ids, body.rep_ids
    )
    session.commit()
    return out
