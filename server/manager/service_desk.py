"""``/v1/tickets/…``: a ticket reaches its assigned agent, whoever owns the customer.

A ticket is customer data (it syncs to the phones of whoever sees the customer). A
service agent assigned to it (``assignee_id``) may work in another team, so these
routes — for any signed-in user — give the agent their tickets online:

* ``GET /v1/tickets/assigned`` — the tickets assigned to the caller (open ones by
  default), each with the customer's name;
* ``POST /v1/tickets/{id}/progress`` — the assignee moves the ticket on (status, a
  comment): written through the sync engine as one group by a principal that sees
  exactly that ticket's owner, attributed to the agent, so the customer's phones pull it.

Only the assignee passes here; everyone else keeps the ordinary scope rules. Finding the
caller's tickets reads ``records`` with a prefix test on the canonical JSON
(``"assignee_id":"<id>"``, exact because the stored JSON is canonical), then decodes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Literal, cast

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, Table, select

from sync_protocol.messages import ID_PATTERN

from ..accounts import Principal
from ..deps import ContextDep, CurrentAuth, SessionDep
from ..errors import NotFound
from ..models import Record
from ..repository import lock_counter
from .common import RecordOut, error_responses
from .records import apply_group, load_row, make_mutation, new_record_id

router = APIRouter(prefix="/v1/tickets", tags=["service desk"])
records_t = cast(Table, Record.__table__)
OPEN = ("open", "in_progress")


class AssignedTicket(BaseModel):
    ticket: RecordOut
    customer_name: str | None = Field(
        description="The customer's name (the agent may not see the customer)."
    )


class AssignedTickets(BaseModel):
    items: list[AssignedTicket]


class Progress(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"status": "resolved", "comment": "已更换滤网，恢复制冷。"}]
        },
    )

    status: Literal["open", "in_progress", "resolved", "closed"] | None = None
    comment: str | None = Field(default=None, min_length=1, max_length=20_000)


def _assigned(
    conn: Connection, user_id: str, statuses: tuple[str, ...] | None
) -> list[tuple[RecordOut, str | None]]:
    needle = json.dumps({"assignee_id": user_id}, separators=(",", ":"))[1:-1]
    rows = conn.execute(
        select(records_t.c.record_id).where(
            records_t.c.collection == "tickets",
            records_t.c.deleted.is_(False),
            records_t.c.data.contains(needle, autoescape=True),
        )
    ).scalars()
    out = []
    for rid in rows:
        row = load_row(conn, "tickets", rid)
        if row is None or row.fields.get("assignee_id") != user_id:
            continue
        if statuses is not None and row.fields.get("status") not in statuses:
            continue
        customer = load_row(conn, "customers", str(row.customer_id)) if row.customer_id else None
        name = (
            customer.fields.get("name") if customer is not None and not customer.deleted else None
        )
        out.append((row.out(), name))
    out.sort(key=lambda t: (str(t[0].fields.get("sla_due_at") or "~"), t[0].id))
    return out


@router.get("/assigned", response_model=AssignedTickets, responses=error_responses())
def assigned(
    auth: CurrentAuth,
    session: SessionDep,
    all: Annotated[bool, Query(description="Also resolved and closed tickets.")] = False,
) -> AssignedTickets:
    """The tickets assigned to you, soonest SLA first (any role, any customer)."""
    found = _assigned(session.connection(), auth.user.id, None if all else OPEN)
    session.rollback()
    return AssignedTickets(items=[AssignedTicket(ticket=t, customer_name=n) for t, n in found])


@router.post("/{ticket_id}/progress", response_model=RecordOut, responses=error_responses(404))
def progress(
    ticket_id: Annotated[str, Path(pattern=ID_PATTERN)],
    body: Progress,
    auth: CurrentAuth,
    context: ContextDep,
    session: SessionDep,
) -> RecordOut:
    """The assignee moves their ticket on: a new status and/or a comment, all or nothing."""
    conn = session.connection()
    lock_counter(conn)
    ticket = load_row(conn, "tickets", ticket_id)
    if ticket is None or ticket.deleted or ticket.fields.get("assignee_id") != auth.user.id:
        raise NotFound(f"no ticket {ticket_id!r} assigned to you", details={"id": ticket_id})
    # Sees exactly this ticket's owner: the engine's scope rules pass for it and no more.
    agent = Principal(
        auth.user.id, "manager", None, frozenset({ticket.owner_id or ""}), auth.device.id
    )
    now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    mutations = []
    if body.status is not None and body.status != ticket.fields.get("status"):
        fields: dict[str, object] = {"status": body.status}
        if body.status == "resolved" and not ticket.fields.get("resolved_at"):
            fields["resolved_at"] = now
        mutations.append(
            make_mutation(context, "tickets", ticket_id, fields=fields, current=ticket)
        )
    if body.comment is not None:
        mutations.append(
            make_mutation(
                context,
                "ticket_comments",
                new_record_id(),
                fields={
                    "customer_id": ticket.customer_id,
                    "ticket_id": ticket_id,
                    "body": body.comment,
                    "author_id": auth.user.id,
                    "created_at": now,
                },
            )
        )
    if mutations:
        apply_group(conn, context, agent, mutations)
    row = load_row(conn, "tickets", ticket_id)
    session.commit()
    assert row is not None
    return row.out()


__all__ = ["router"]
