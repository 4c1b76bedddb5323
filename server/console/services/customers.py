"""The customer list (search, filters, pages) and the customer page."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Select, Subquery, exists, func, select
from sqlalchemy.orm import Session

from sync_protocol import CRM_SCHEMA

from ...attachments.messages import AttachmentOut
from ...attachments.service import AttachmentService
from ...crm.indexing import ensure_search_current, search_t
from ...crm.keys import search_needle
from ...manager.records import StoredRow, load_rows, visible_row
from ...manager.search import matching_entries
from ...reports import facts, sql
from ...reports.base import scope_users
from ...reports.kinds import TEXT, Columns
from ..session import ConsoleUser
from .records import PAGE_SIZE, ROW_COLUMNS, PageSlice, children, decode, records_t, sort_by

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


def filter_terms(query: CustomerQuery) -> list[tuple[str, str]]:
    pairs = [(name, getattr(query, name)) for name in ("status", "tier", "source")]
    if query.tag:
        pairs.append(("tags", query.tag))
    return [(k, v) for k, v in pairs if v]


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


#: The customer fields the list filters and sorts by, typed in the reporting table.
_COLUMNS: Columns = {"name": TEXT, "status": TEXT, "tier": TEXT, "source": TEXT}


def _matching(conn: Connection, me: ConsoleUser, query: CustomerQuery) -> Select[Any]:
    """``SELECT id`` of the customers the query selects, in the caller's scope.

    Filters read the typed reporting table (:mod:`server.reports.sql`, its scope
    predicate is the sync engine's rule); a text search reads the CRM search table
    (:mod:`server.crm.indexing`: name, phones, company and e-mail, each also as full
    pinyin and initials, so ``zs`` finds 张三); only a tag filter reads the record's
    stored JSON text.
    """
    view = sql.view("customers", _COLUMNS, me.principal, name="customer_list")
    stmt = select(view.c.id)
    if query.owner:
        stmt = stmt.where(view.c.owner_id == query.owner)
    for name in ("status", "tier", "source"):
        value = getattr(query, name)
        if value:
            stmt = stmt.where(view.c[name] == value)
    if query.tag:
        # Tags are a JSON list in the canonical text: the quoted tag is a member.
        stmt = stmt.join(
            records_t,
            (records_t.c.collection == "customers") & (records_t.c.record_id == view.c.id),
        )
        member = json.dumps(query.tag, ensure_ascii=False)
        stmt = stmt.where(records_t.c.data.like(_like(member), escape="\\"))
    needle = search_needle(query.q)
    if needle:
        stmt = stmt.where(
            view.c.id.in_(
                matching_entries(
                    conn,
                    "customers",
                    needle,
                    (search_t.c.record_id,),
                    (search_t.c.collection == "customers",),
                )
            )
        )
    return stmt


#: From this offset on, an unfiltered page first tries :func:`_deep_page`.
DEEP_OFFSET = 1000


def _deep_page(conn: Connection, matching: Subquery, offset: int, size: int) -> list[str] | None:
    """A deep page of an unfiltered list whose scope is every customer (an admin; the
    manager of the only team), read off the sort key's index alone: no join to skip
    ``offset`` rows through, no sort of the whole book (at 50,000 customers, page 400
    sorted 20,000 rows). None when the scope leaves any customer out, or when a
    customer written since then is not in ``matching``: the caller walks as usual."""
    customers = search_t.c.collection == "customers"
    left_out = conn.execute(
        select(func.count())
        .select_from(search_t)
        .where(customers, ~exists().where(matching.c.id == search_t.c.record_id))
    ).scalar_one()
    if left_out:
        return None
    ids = list(
        conn.execute(
            select(search_t.c.record_id)
            .where(customers)
            .order_by(search_t.c.sort_key, search_t.c.record_id)
            .offset(offset)
            .limit(size)
        ).scalars()
    )
    # Each of them in scope (one may have been written since the count above).
    seen = set(conn.execute(select(matching.c.id).where(matching.c.id.in_(ids))).scalars())
    return ids if seen == set(ids) else None


def page_of_customers(
    session: Session, me: ConsoleUser, query: CustomerQuery, size: int = PAGE_SIZE
) -> PageSlice:
    """One page of the list, filtered and counted in the database, in pinyin order
    (安 before 张: the CRM search table's sort key, which every write path keeps).

    The page is read by walking the sort key's index and keeping the rows the filters
    select, so the first pages cost a few index lookups whatever the size of the book.
    """
    # Bring the reporting table up to date — without ``sql.prepare``'s report setting
    # (no nested loops), which would force this walk into sorting the whole book.
    facts.catch_up(session.get_bind().engine)
    conn = session.connection()
    # The list walks the search table's sort key: every committed customer in it first.
    ensure_search_current(conn)
    matching = _matching(conn, me, query).subquery("matching")
    ordered = search_t.alias("customer_order")
    walk = (
        select(ordered.c.record_id)
        .join(matching, matching.c.id == ordered.c.record_id)
        .where(ordered.c.collection == "customers")
        .order_by(ordered.c.sort_key, ordered.c.record_id)
    )
    if search_needle(query.q):
        # A text search scans the search table once: the matches are counted (a window
        # over all of them, before the page is cut) in the statement that pages them.
        counted = walk.add_columns(func.count().over().label("total"))
        page = max(query.page, 1)
        found = conn.execute(counted.offset((page - 1) * size).limit(size)).all()
        if not found and page > 1:  # past the end: the last page instead
            total = int(conn.execute(select(func.count()).select_from(matching)).scalar_one())
            page = max(1, -(-total // size))
            found = conn.execute(counted.offset((page - 1) * size).limit(size)).all()
        total = found[0].total if found else 0
        pages = max(1, -(-total // size))
        ids = [r.record_id for r in found]
    else:
        total = int(conn.execute(select(func.count()).select_from(matching)).scalar_one())
        pages = max(1, -(-total // size))
        page = min(max(query.page, 1), pages)
        deep = None
        if (page - 1) * size >= DEEP_OFFSET and not (query.owner or filter_terms(query)):
            deep = _deep_page(conn, matching, (page - 1) * size, size)
        ids = (
            deep
            if deep is not None
            else list(conn.execute(walk.offset((page - 1) * size).limit(size)).scalars())
        )
    rows = {
        r.record_id: decode(r)
        for r in conn.execute(
            select(*ROW_COLUMNS).where(
                records_t.c.collection == "customers", records_t.c.record_id.in_(ids)
            )
        )
    }
    items = [rows[i] for i in ids if i in rows]
    first = (page - 1) * size
    return PageSlice(items, total, page, pages, first + 1 if items else 0, first + len(items))


def search(
    session: Session, me: ConsoleUser, query: CustomerQuery, limit: int = 20
) -> list[StoredRow]:
    """The first ``limit`` customers matching the query, by name (pickers)."""
    found = page_of_customers(session, me, CustomerQuery(q=query.q, page=1), size=limit).items
    session.rollback()
    return found


def list_customers(session: Session, me: ConsoleUser, query: CustomerQuery) -> CustomerList:
    entity = CRM_SCHEMA["customers"]
    page = page_of_customers(session, me, query)
    view = CustomerList(
        query=query,
        slice=page,
        owners=scope_users(session, me.auth, reps_only=False),
        choices={n: entity.fields[n].choices for n in ("status", "tier", "source")},
    )
    session.rollback()
    return view


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
