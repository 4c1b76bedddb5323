"""Leads: the list, a lead's page, creating one for a rep, (re)assigning, converting.

Every write is the CRM engineer's server operation, not a copy: a new lead is placed with
a rep through :func:`server.manager.records.write_record` (``new_owner_id``: a manager
or admin chooses the owner within their scope, as ``POST /v1/manager/records/leads``
does); existing leads move with :func:`server.manager.leads.reassign_leads` or
``assign_round_robin`` (the old owner's phones get evictions); a conversion is
:func:`server.manager.leads.convert_lead` — the same group of writes
(:func:`sync_protocol.leads.plan_conversion`) a phone sends offline, applied all or
nothing, with the duplicate check against existing customers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sync_protocol import CRM_SCHEMA, ErrorCode, ProtocolError
from sync_protocol.leads import CONVERTED

from ...context import ServerContext
from ...crm.indexing import ensure_search_current, search_t
from ...crm.keys import search_needle
from ...manager.leads import (
    ConversionOut,
    ConvertLead,
    LeadAssignment,
    assign_round_robin,
    convert_lead,
    reassign_leads,
)
from ...manager.records import StoredRow, load_row, new_record_id, visible_row, write_record
from ...manager.search import matching_entries
from ...reports import sql
from ...reports.base import scope_users
from ...reports.kinds import TEXT
from ..session import ConsoleUser
from . import pipeline
from .records import PAGE_SIZE, ROW_COLUMNS, PageSlice, decode, records_t

LEADS = "leads"


@dataclass(slots=True)
class LeadQuery:
    q: str = ""
    status: str = ""
    owner: str = ""
    page: int = 1

    def params(self) -> dict[str, str]:
        return {"q": self.q, "status": self.status, "owner": self.owner}


def page_of_leads(session: Session, me: ConsoleUser, query: LeadQuery) -> PageSlice:
    """One page of the caller's leads, newest first, filtered and counted in SQL: the
    typed reporting table (its scope predicate is the sync engine's rule) for status and
    owner, the CRM search table (characters, pinyin, initials) for the text search."""
    sql.prepare(session)
    conn = session.connection()
    view = sql.view(LEADS, {"status": TEXT}, me.principal, name="lead_list")
    stmt = select(view.c.id, view.c.created_at_ms)
    if query.owner:
        stmt = stmt.where(view.c.owner_id == query.owner)
    if query.status:
        stmt = stmt.where(view.c.status == query.status)
    needle = search_needle(query.q)
    if needle:
        ensure_search_current(conn)  # every committed lead in the search table first
        stmt = stmt.where(
            view.c.id.in_(
                matching_entries(
                    conn, LEADS, needle, (search_t.c.record_id,), (search_t.c.collection == LEADS,)
                )
            )
        )
    matching = stmt.subquery("matching_leads")
    total = int(conn.execute(select(func.count()).select_from(matching)).scalar_one())
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(query.page, 1), pages)
    ids = list(
        conn.execute(
            select(matching.c.id)
            .order_by(matching.c.created_at_ms.desc(), matching.c.id)
            .offset((page - 1) * PAGE_SIZE)
            .limit(PAGE_SIZE)
        ).scalars()
    )
    rows = {
        r.record_id: decode(r)
        for r in conn.execute(
            select(*ROW_COLUMNS).where(
                records_t.c.collection == LEADS, records_t.c.record_id.in_(ids)
            )
        )
    }
    items = [rows[i] for i in ids if i in rows]
    first = (page - 1) * PAGE_SIZE
    return PageSlice(items, total, page, pages, first + 1 if items else 0, first + len(items))


def create_lead(
    session: Session,
    context: ServerContext,
    me: ConsoleUser,
    fields: dict[str, Any],
    owner_id: str | None,
) -> StoredRow:
    """A new lead owned by ``owner_id`` (a rep in the caller's scope) or by the caller."""
    outcome = write_record(
        session,
        context,
        me.principal,
        LEADS,
        new_record_id(),
        op="upsert",
        fields=fields,
        creating=True,
        new_owner_id=owner_id or None,
    )
    assert outcome.row is not None
    return outcome.row


ROUND_ROBIN = "round_robin"


def assign(
    session: Session,
    context: ServerContext,
    me: ConsoleUser,
    lead_ids: list[str],
    to: str,
) -> LeadAssignment:
    """Give leads to one rep (``to`` = the rep's id), or spread them over the team's
    reps, least loaded first (``to`` = :data:`ROUND_ROBIN`): the CRM's own operations
    (:func:`server.manager.leads.reassign_leads` / ``assign_round_robin``), which check
    scope, move the leads and evict them from the old owner's phones. Commits."""
    conn = session.connection()
    for lead_id in lead_ids:
        visible_row(conn, me.principal, LEADS, lead_id)  # 404 for a lead not in scope
    if to == ROUND_ROBIN:
        out = assign_round_robin(conn, context, me.principal, lead_ids)
    else:
        out = reassign_leads(conn, context, me.principal, lead_ids, to)
    session.commit()
    return out


@dataclass(slots=True)
class LeadPage:
    lead: StoredRow
    owner_name: str
    reps: dict[str, str]
    stages: list[StoredRow]
    converted: dict[str, StoredRow | None] = field(default_factory=dict)

    @property
    def is_converted(self) -> bool:
        return self.lead.fields.get("status") == CONVERTED


def lead_page(session: Session, me: ConsoleUser, lead_id: str) -> LeadPage:
    conn = session.connection()
    lead = visible_row(conn, me.principal, LEADS, lead_id)
    names = scope_users(session, me.auth, reps_only=False)
    open_stages = [
        s
        for s in pipeline.stages(session, me)
        if not (s.fields.get("is_won") or s.fields.get("is_lost"))
    ]
    converted: dict[str, StoredRow | None] = {}
    for name, collection in (
        ("converted_customer_id", "customers"),
        ("converted_contact_id", "contacts"),
        ("converted_opportunity_id", "opportunities"),
    ):
        rid = lead.fields.get(name)
        if isinstance(rid, str):
            row = load_row(conn, collection, rid)
            visible = row is not None and not row.deleted and me.principal.sees_owner(row.owner_id)
            converted[collection] = row if visible else None
    page = LeadPage(
        lead=lead,
        owner_name=names.get(lead.owner_id or "", lead.owner_id or ""),
        reps=scope_users(session, me.auth, reps_only=True),
        stages=open_stages,
        converted=converted,
    )
    session.rollback()
    return page


@dataclass(slots=True)
class Conversion:
    """What the manager asked for on the convert form."""

    contact: bool = True
    deal: bool = False
    deal_name: str = ""
    stage_id: str = ""
    amount: float | None = None
    existing_customer_id: str | None = None
    override_duplicate: bool = False


@dataclass(slots=True)
class DuplicateFound:
    """The new customer looks like existing ones: the manager chooses."""

    matches: list[dict[str, Any]]


def convert(
    session: Session, context: ServerContext, me: ConsoleUser, lead_id: str, form: Conversion
) -> ConversionOut | DuplicateFound:
    """Convert through the manager API's own operation (one atomic group)."""
    opportunity: dict[str, Any] | None = None
    if form.deal:
        opportunity = {"stage_id": form.stage_id}
        if form.deal_name.strip():
            opportunity["name"] = form.deal_name.strip()
        if form.amount is not None:
            opportunity["amount"] = form.amount
    body = ConvertLead(
        existing_customer_id=form.existing_customer_id,
        contact=form.contact,
        opportunity=opportunity,
        override=["possible_duplicate"] if form.override_duplicate else [],
    )
    try:
        return convert_lead(lead_id, body, me.auth, context, session)
    except ProtocolError as exc:
        session.rollback()
        if exc.code is ErrorCode.POSSIBLE_DUPLICATE:
            return DuplicateFound(list((exc.details or {}).get("matches", [])))
        raise


def lead_fields() -> tuple[str, ...]:
    """The lead's fields a page shows, in schema order (the links have their own block)."""
    hidden = {"owner_id", "custom", "converted_customer_id", "converted_contact_id"}
    hidden |= {"converted_opportunity_id", "campaign_id"}
    return tuple(n for n in CRM_SCHEMA[LEADS].fields if n not in hidden)
