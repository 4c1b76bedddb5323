"""What needs attention: contracts running out, and follow-ups past due.

* **Contracts expiring** — ``signed``/``active`` contracts whose ``ends_on`` is on or
  after ``today`` and either within ``today + days`` or within the contract's own
  ``remind_days_before`` (a contract asking to be reminded 60 days ahead is listed 60
  days ahead even when the report looks 30 days out; ``reminder`` says which).
* **Overdue follow-ups** — per owner: open tasks whose ``due_at`` is before ``as_of``,
  and customers whose ``next_follow_up`` day is before ``as_of``'s own calendar day.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, or_, select

from . import sql
from .base import ReportContext

_EPOCH_DAY = date(1970, 1, 1)


class ExpiringContract(BaseModel):
    contract_id: str
    number: str
    title: str | None
    status: str
    status_label: str
    customer_id: str | None
    customer_name: str | None
    owner_id: str | None
    amount: float | None
    ends_on: date
    days_left: int
    remind_days_before: int | None
    reminder: bool


class ExpiringContractsReport(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "today": "2026-11-23",
                    "days": 30,
                    "contracts": [
                        {
                            "contract_id": "k-a",
                            "number": "HT-001",
                            "title": None,
                            "status": "active",
                            "status_label": "执行中",
                            "customer_id": "c1",
                            "customer_name": "客户一",
                            "owner_id": "u-rep1",
                            "amount": 50000,
                            "ends_on": "2026-12-01",
                            "days_left": 8,
                            "remind_days_before": None,
                            "reminder": False,
                        }
                    ],
                }
            ]
        }
    )

    today: date
    days: int
    contracts: list[ExpiringContract]


def expiring_contracts(ctx: ReportContext, today: date, days: int) -> ExpiringContractsReport:
    k = ctx.view(
        "contracts",
        {
            "number": sql.TEXT,
            "title": sql.TEXT,
            "status": sql.TEXT,
            "amount": sql.NUMBER,
            "ends_on": sql.TEXT,
            "ends_n": sql.F("ends_on", sql.DAYNUM),
            "remind_days_before": sql.NUMBER,
        },
        "contracts",
    )
    c = ctx.view("customers", {"name": sql.TEXT}, "customers")
    today_n = (today - _EPOCH_DAY).days
    stmt = (
        select(k, c.c.name.label("customer_name"))
        .select_from(k.outerjoin(c, c.c.id == k.c.customer_id))
        .where(
            k.c.status.in_(("signed", "active")),
            k.c.ends_n >= today_n,
            or_(
                k.c.ends_n <= today_n + days,
                k.c.ends_n - func.coalesce(k.c.remind_days_before, -1) <= today_n,
            ),
        )
        .order_by(k.c.ends_on, k.c.number)
    )
    out = []
    for r in ctx.rows(stmt):
        ends = date.fromisoformat(r.ends_on)
        remind = int(r.remind_days_before) if r.remind_days_before is not None else None
        out.append(
            ExpiringContract(
                contract_id=r.id,
                number=str(r.number or ""),
                title=r.title,
                status=r.status,
                status_label=ctx.choice("contracts", "status", r.status),
                customer_id=r.customer_id,
                customer_name=r.customer_name,
                owner_id=r.owner_id,
                amount=sql.as_float(r.amount),
                ends_on=ends,
                days_left=(ends - today).days,
                remind_days_before=remind,
                reminder=(ends - today).days > days,
            )
        )
    return ExpiringContractsReport(today=today, days=days, contracts=out)


# ---- overdue follow-ups --------------------------------------------------------------


class OverdueTask(BaseModel):
    task_id: str
    title: str
    due_at: str
    customer_id: str | None


class OverdueCustomer(BaseModel):
    customer_id: str
    name: str
    next_follow_up: date


class OverdueByRep(BaseModel):
    owner_id: str
    name: str
    overdue_tasks: int
    overdue_follow_ups: int
    tasks: list[OverdueTask]
    customers: list[OverdueCustomer]


class OverdueReport(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "as_of": "2026-11-23T12:00:00Z",
                    "reps": [
                        {
                            "owner_id": "u-rep1",
                            "name": "王芳",
                            "overdue_tasks": 1,
                            "overdue_follow_ups": 1,
                            "tasks": [
                                {
                                    "task_id": "ta1",
                                    "title": "回访",
                                    "due_at": "2026-11-20T09:00:00+00:00",
                                    "customer_id": "c1",
                                }
                            ],
                            "customers": [
                                {
                                    "customer_id": "c1",
                                    "name": "客户一",
                                    "next_follow_up": "2026-11-10",
                                }
                            ],
                        }
                    ],
                }
            ]
        }
    )

    as_of: datetime
    reps: list[OverdueByRep]


def _overdue_views(ctx: ReportContext, as_of: datetime) -> tuple[Any, Any]:
    """``(tasks, customers)`` selects of what is overdue at ``as_of`` — the one definition
    both the report and :func:`overdue_counts` use."""
    t = ctx.view(
        "tasks",
        {
            "title": sql.TEXT,
            "status": sql.TEXT,
            "due_text": sql.F("due_at", sql.TEXT),
            "due_at": sql.EPOCH,
        },
        "tasks",
    )
    c = ctx.view("customers", {"name": sql.TEXT, "next_follow_up": sql.DAY}, "customers")
    tasks = t.select().where(
        t.c.status == "open", t.c.due_at < as_of.timestamp(), t.c.owner_id.is_not(None)
    )
    day = as_of.date().isoformat()
    customers = c.select().where(c.c.next_follow_up < day, c.c.owner_id.is_not(None))
    return tasks, customers


def overdue_counts(ctx: ReportContext, as_of: datetime) -> dict[str, tuple[int, int]]:
    """Owner → (overdue tasks, customers past their follow-up day): the report's figures
    without its lists (what a dashboard shows)."""
    tasks, customers = _overdue_views(ctx, as_of)
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for index, stmt in enumerate((tasks, customers)):
        sub = stmt.subquery()
        grouped = select(sub.c.owner_id, func.count()).group_by(sub.c.owner_id)
        for owner, n in ctx.rows(grouped):
            counts[owner][index] = int(n)
    return {owner: (n[0], n[1]) for owner, n in counts.items()}


def _first(stmt: Any, order: tuple[Any, ...], per_rep: int | None) -> Any:
    """``stmt`` in ``order``, at most ``per_rep`` rows of each owner (SQL window)."""
    if per_rep is None:
        return stmt.order_by(*order)
    sub = stmt.add_columns(
        func.row_number()
        .over(partition_by=stmt.selected_columns.owner_id, order_by=order)
        .label("n")
    ).subquery()
    return select(sub).where(sub.c.n <= per_rep).order_by(sub.c.owner_id, sub.c.n)


def overdue(ctx: ReportContext, as_of: datetime, per_rep: int | None = None) -> OverdueReport:
    """Every rep's overdue tasks and follow-ups: the counts always complete, the lists the
    first ``per_rep`` of each (soonest first; ``None``: all of them, the CSV)."""
    task_stmt, customer_stmt = _overdue_views(ctx, as_of)
    counts = overdue_counts(ctx, as_of)
    tasks: dict[str, list[OverdueTask]] = defaultdict(list)
    t_cols = task_stmt.selected_columns
    for r in ctx.rows(_first(task_stmt, (t_cols.due_at, t_cols.id), per_rep)):
        tasks[r.owner_id].append(
            OverdueTask(
                task_id=r.id,
                title=str(r.title or ""),
                due_at=str(r.due_text),
                customer_id=r.customer_id,
            )
        )
    customers: dict[str, list[OverdueCustomer]] = defaultdict(list)
    columns = customer_stmt.selected_columns
    for r in ctx.rows(_first(customer_stmt, (columns.next_follow_up, columns.id), per_rep)):
        customers[r.owner_id].append(
            OverdueCustomer(
                customer_id=r.id,
                name=str(r.name or ""),
                next_follow_up=date.fromisoformat(r.next_follow_up[:10]),
            )
        )
    names = ctx.people(reps_only=False)
    reps = [
        OverdueByRep(
            owner_id=owner,
            name=names.get(owner, owner),
            overdue_tasks=counts.get(owner, (0, 0))[0],
            overdue_follow_ups=counts.get(owner, (0, 0))[1],
            tasks=tasks.get(owner, []),
            customers=customers.get(owner, []),
        )
        for owner in sorted(counts)
    ]
    return OverdueReport(as_of=as_of, reps=reps)
