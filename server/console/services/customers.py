"""The customer list (search, filters, pages) and the customer page."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from sync_protocol import CRM_SCHEMA

from ...attachments.messages import AttachmentOut
from ...attachments.service import AttachmentService
from ...manager.records import StoredRow, load_rows, select_rows, visible_row
from ...manager.report_routes import scope_users
from ..session import ConsoleUser
from .records import PageSlice, children, paginate, sort_by

FILTERS = ("owner", "status", "tier", "source", "tag")
CHILDREN = ("contacts", "opportunities", "activities", "tasks", "contracts", "tickets")


@dataclass(slots=True)
class CustomerQuery:
    q: str = ""
    owner: str = ""
    status: str = ""
    tier: str = ""
    source: str = ""
    tag: str = ""
    page: int = 1

    def params(self) -> dict[str, Any]:
        return {
            "q": self.q,
            "owner": self.owner,
            "status": self.status,
            "tier": self.tier,
            "source": self.source,
            "tag": self.tag,
        }


@dataclass(slots=True)
class CustomerList:
    query: CustomerQuery
    slice: PageSlice
    owners: dict[str, str]
    choices: dict[str, tuple[str, ...]]


def _filters(query: CustomerQuery) -> list[tuple[str, str]]:
    pairs = [(name, getattr(query, name)) for name in ("status", "tier", "source")]
    if query.tag:
        pairs.append(("tags", query.tag))
    return [(k, v) for k, v in pairs if v]


def search(session: Session, me: ConsoleUser, query: CustomerQuery) -> list[StoredRow]:
    """Every customer in scope matching the query, by name."""
    entity = CRM_SCHEMA["customers"]
    rows = select_rows(
        load_rows(session.connection(), me.principal, "customers"),
        filters=_filters(query),
        search=query.q or None,
        search_fields=entity.search_fields,
        owner_id=query.owner or None,
        sort="name",
    )
    session.rollback()
    return rows


def list_customers(session: Session, me: ConsoleUser, query: CustomerQuery) -> CustomerList:
    rows = search(session, me, query)
    entity = CRM_SCHEMA["customers"]
    return CustomerList(
        query=query,
        slice=paginate(rows, query.page),
        owners=scope_users(session, me.auth, reps_only=False),
        choices={n: entity.fields[n].choices for n in ("status", "tier", "source")},
    )


@dataclass(slots=True)
class TimelineEntry:
    activity: StoredRow
    photos: list[AttachmentOut] = field(default_factory=list)


@dataclass(slots=True)
class CustomerPage:
    customer: StoredRow
    owner_name: str
    contacts: list[StoredRow]
    deals: list[StoredRow]
    timeline: list[TimelineEntry]
    tasks: list[StoredRow]
    contracts: list[StoredRow]
    tickets: list[StoredRow]
    stages: dict[str, dict[str, Any]]
    names: dict[str, str]


def customer_page(
    session: Session, me: ConsoleUser, attachments: AttachmentService | None, customer_id: str
) -> CustomerPage:
    conn = session.connection()
    customer = visible_row(conn, me.principal, "customers", customer_id)
    kids = children(conn, me.principal, customer_id, CHILDREN)
    stages = {s.id: s.fields for s in load_rows(conn, me.principal, "pipeline_stages")}
    names = scope_users(session, me.auth, reps_only=False)
    timeline = []
    for act in sort_by(kids["activities"], "occurred_at", reverse=True):
        photos: list[AttachmentOut] = []
        if attachments is not None and act.fields.get("type") in ("visit", "meeting"):
            photos = attachments.list_for_record(session, me.principal, act.id, "activities")
        timeline.append(TimelineEntry(act, [p for p in photos if p.mime.startswith("image/")]))
    page = CustomerPage(
        customer=customer,
        owner_name=names.get(customer.owner_id or "", customer.owner_id or ""),
        contacts=sort_by(kids["contacts"], "name"),
        deals=sort_by(kids["opportunities"], "expected_close_date"),
        timeline=timeline,
        tasks=sort_by(kids["tasks"], "due_at"),
        contracts=sort_by(kids["contracts"], "ends_on"),
        tickets=sort_by(kids["tickets"], "opened_at", reverse=True),
        stages=stages,
        names=names,
    )
    session.rollback()
    return page
