"""Sales performance: each rep against their targets, and each product against its own.

**Rep performance** over ``[start, end]``, optionally cut into months, quarters or years:

* *target* — Σ ``amount`` of the rep's ``sales_targets`` **without** a ``product_id``
  whose whole period lies inside the window (product targets belong to the product
  report, so nothing is counted twice);
* *won amount / won / lost* — opportunities of the rep's customers with ``status`` won or
  lost whose ``closed_at`` falls on a day of the window (the local day it was recorded);
* *win rate* = won ÷ (won + lost); *attainment* = won amount ÷ target;
* *average cycle* — mean days from the deal's first stage change (else its arrival on the
  server) to ``closed_at`` over the won deals;
* *activities* — activities on a day of the window, counted for their ``author_id``, else
  for the customer's owner.

**Product performance** over ``[start, end]``: per product, its *target* (Σ targets with
that ``product_id`` inside the window), its *won* opportunities (``product_id``, closed in
the window), and its *orders*: lines of ``quotes`` with ``kind = "order"`` and a placed
status (:data:`PLACED_ORDER_STATUSES`) whose ``ordered_at`` (else the day the order
reached the server) is in the window — count of orders, quantity, and revenue
Σ ``line_total`` (tax included; a line without one counts quantity × unit price ×
(1 − discount)). *attainment* = order revenue ÷ target.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, Integer, String, case, cast, func, literal, select

from . import sql
from .base import Period, ReportContext, Window, periods

#: Order statuses that mean the order was placed (not a draft, not refused or cancelled).
PLACED_ORDER_STATUSES = ("sent", "accepted", "fulfilled")
TOTAL = "total"


class PeriodFigures(BaseModel):
    period: str = Field(description='"2026-10", "2026-Q4", "2026", or "total".')
    start: date
    end: date
    target: float
    won_amount: float
    attainment: float | None = Field(description="won_amount ÷ target; null without a target")
    won_count: int
    lost_count: int
    win_rate: float | None
    avg_cycle_days: float | None
    activities: int


class RepPerformance(PeriodFigures):
    rep_id: str
    name: str
    periods: list[PeriodFigures] = Field(description="Per month/quarter/year when asked.")


class PerformanceReport(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "start": "2026-10-01",
                    "end": "2026-12-31",
                    "period": "month",
                    "reps": [
                        {
                            "rep_id": "u-rep1",
                            "name": "王芳",
                            "period": "total",
                            "start": "2026-10-01",
                            "end": "2026-12-31",
                            "target": 30000,
                            "won_amount": 15000,
                            "attainment": 0.5,
                            "won_count": 3,
                            "lost_count": 1,
                            "win_rate": 0.75,
                            "avg_cycle_days": 10.0,
                            "activities": 24,
                            "periods": [],
                        }
                    ],
                }
            ]
        }
    )

    start: date
    end: date
    period: str
    reps: list[RepPerformance]


def bucket(day: Any, period: Period) -> ColumnElement[str]:
    """The label of the period a ``YYYY-MM-DD`` day falls in ("2026-10", "2026-Q4",
    "2026"; "total" for the whole window) — computed per row, so no join is needed."""
    if period == "month":
        return func.substr(day, 1, 7)
    if period == "year":
        return func.substr(day, 1, 4)
    if period == "quarter":
        month = cast(func.substr(day, 6, 2), Integer)
        return func.substr(day, 1, 4) + "-Q" + cast((month + 2) / 3, String)
    return literal(TOTAL)


#: Per (rep, period label): Σ won amount, won, lost, Σ cycle days, deals with a cycle,
#: activities, target — summed, so the total is the sum of the periods.
_Sums = dict[tuple[str, str], list[float]]
_WON, _WON_N, _LOST_N, _CYCLE, _CYCLE_N, _ACTS, _TARGET = range(7)


def _add(sums: _Sums, rep: str, label: str, values: dict[int, Any]) -> None:
    for key in ((rep, label), (rep, TOTAL)) if label != TOTAL else ((rep, TOTAL),):
        acc = sums.setdefault(key, [0.0] * 7)
        for index, value in values.items():
            acc[index] += float(value or 0)


def _targets(ctx: ReportContext, start: date, end: date, period: Period, sums: _Sums) -> None:
    t = ctx.view(
        "sales_targets",
        {
            "period_start": sql.TEXT,
            "period_end": sql.TEXT,
            "amount": sql.NUMBER,
            "product_id": sql.TEXT,
        },
        "targets",
    )
    first, last = bucket(t.c.period_start, period), bucket(t.c.period_end, period)
    stmt = (
        select(t.c.owner_id, first, last, func.sum(t.c.amount))
        .where(
            t.c.product_id.is_(None),
            t.c.period_start >= start.isoformat(),
            t.c.period_end <= end.isoformat(),
        )
        .group_by(t.c.owner_id, first, last)
    )
    for owner, b1, b2, amount in ctx.rows(stmt):
        # A target counts in a period only when its whole period lies inside it.
        _add(sums, owner, b1 if b1 == b2 else TOTAL, {_TARGET: amount})


def _closed(ctx: ReportContext, start: date, end: date, period: Period, sums: _Sums) -> None:
    o = ctx.view(
        "opportunities",
        {
            "status": sql.TEXT,
            "amount": sql.NUMBER,
            "closed_day": sql.F("closed_at", sql.DAY),
            "closed_at": sql.EPOCH,
        },
        "opps",
    )
    c = ctx.view("stage_changes", {"opportunity_id": sql.TEXT, "changed_at": sql.EPOCH}, "changes")
    first = (
        select(c.c.opportunity_id, func.min(c.c.changed_at).label("began"))
        .group_by(c.c.opportunity_id)
        .subquery("first_change")
    )
    won = o.c.status == "won"
    cycle = (o.c.closed_at - func.coalesce(first.c.began, o.c.created_at_ms / 1000.0)) / 86400.0
    timed = won & o.c.closed_at.is_not(None)
    label = bucket(o.c.closed_day, period)
    stmt = (
        select(
            o.c.owner_id,
            label,
            func.sum(case((won, func.coalesce(o.c.amount, 0)), else_=0)),
            func.sum(case((won, 1), else_=0)),
            func.sum(case((won, 0), else_=1)),
            func.sum(case((timed, cycle), else_=0)),
            func.sum(case((timed, 1), else_=0)),
        )
        .select_from(o.outerjoin(first, first.c.opportunity_id == o.c.id))
        .where(
            o.c.status.in_(("won", "lost")),
            o.c.owner_id.is_not(None),
            o.c.closed_day >= start.isoformat(),
            o.c.closed_day <= end.isoformat(),
        )
        .group_by(o.c.owner_id, label)
    )
    for owner, b, *figures in ctx.rows(stmt):
        _add(
            sums,
            owner,
            b,
            dict(zip((_WON, _WON_N, _LOST_N, _CYCLE, _CYCLE_N), figures, strict=True)),
        )


def _activities(ctx: ReportContext, start: date, end: date, period: Period, sums: _Sums) -> None:
    a = ctx.view(
        "activities", {"author_id": sql.TEXT, "day": sql.F("occurred_at", sql.DAY)}, "acts"
    )
    who, label = func.coalesce(a.c.author_id, a.c.owner_id), bucket(a.c.day, period)
    stmt = (
        select(who, label, func.count())
        .where(a.c.day >= start.isoformat(), a.c.day <= end.isoformat())
        .group_by(who, label)
    )
    for rep, b, n in ctx.rows(stmt):
        _add(sums, rep, b, {_ACTS: n})


def _figures(sums: _Sums, rep: str, w: Window) -> PeriodFigures:
    s = sums.get((rep, w.label), [0.0] * 7)
    won_amount, won_n, lost_n = sql.money(s[_WON]), int(s[_WON_N]), int(s[_LOST_N])
    goal = sql.money(s[_TARGET])
    return PeriodFigures(
        period=w.label,
        start=w.start,
        end=w.end,
        target=goal,
        won_amount=won_amount,
        attainment=sql.ratio(won_amount, goal),
        won_count=won_n,
        lost_count=lost_n,
        win_rate=sql.ratio(won_n, won_n + lost_n),
        avg_cycle_days=sql.ratio(s[_CYCLE], s[_CYCLE_N], 2),
        activities=int(s[_ACTS]),
    )


def rep_performance(
    ctx: ReportContext, start: date, end: date, period: Period = "all"
) -> PerformanceReport:
    buckets = periods(start, end, period) if period != "all" else []
    sums: _Sums = {}
    for part in (_targets, _closed, _activities):
        part(ctx, start, end, period, sums)

    reps = []
    for rep_id, name in sorted(ctx.people(reps_only=True).items()):
        total = _figures(sums, rep_id, Window(TOTAL, start, end))
        reps.append(
            RepPerformance(
                rep_id=rep_id,
                name=name,
                periods=[_figures(sums, rep_id, w) for w in buckets],
                **total.model_dump(),
            )
        )
    return PerformanceReport(start=start, end=end, period=period, reps=reps)


# ---- products ------------------------------------------------------------------------


class ProductPerformance(BaseModel):
    product_id: str
    name: str
    sku: str | None
    category: str | None
    target: float
    won_count: int
    won_amount: float
    orders: int = Field(description="Placed orders with a line of this product.")
    quantity: float
    order_revenue: float = Field(description="Σ line totals (tax included).")
    attainment: float | None = Field(description="order_revenue ÷ target")


class ProductReport(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "start": "2026-10-01",
                    "end": "2026-12-31",
                    "products": [
                        {
                            "product_id": "p-1",
                            "name": "智能门锁",
                            "sku": "LOCK-01",
                            "category": "hardware",
                            "target": 100000,
                            "won_count": 2,
                            "won_amount": 30000,
                            "orders": 4,
                            "quantity": 120,
                            "order_revenue": 81360,
                            "attainment": 0.8136,
                        }
                    ],
                }
            ]
        }
    )

    start: date
    end: date
    products: list[ProductPerformance]


def _product_targets(ctx: ReportContext, start: date, end: date) -> dict[str, float]:
    t = ctx.view(
        "sales_targets",
        {
            "period_start": sql.TEXT,
            "period_end": sql.TEXT,
            "amount": sql.NUMBER,
            "product_id": sql.TEXT,
        },
        "targets",
    )
    stmt = (
        select(t.c.product_id, func.sum(t.c.amount))
        .where(
            t.c.product_id.is_not(None),
            t.c.period_start >= start.isoformat(),
            t.c.period_end <= end.isoformat(),
        )
        .group_by(t.c.product_id)
    )
    return {r[0]: sql.money(r[1]) for r in ctx.rows(stmt)}


def _product_won(ctx: ReportContext, start: date, end: date) -> dict[str, tuple[int, float]]:
    o = ctx.view(
        "opportunities",
        {
            "status": sql.TEXT,
            "amount": sql.NUMBER,
            "product_id": sql.TEXT,
            "closed_day": sql.F("closed_at", sql.DAY),
        },
        "opps",
    )
    stmt = (
        select(o.c.product_id, func.count(), func.sum(func.coalesce(o.c.amount, 0)))
        .where(
            o.c.status == "won",
            o.c.product_id.is_not(None),
            o.c.closed_day >= start.isoformat(),
            o.c.closed_day <= end.isoformat(),
        )
        .group_by(o.c.product_id)
    )
    return {r[0]: (int(r[1]), sql.money(r[2])) for r in ctx.rows(stmt)}


def _product_orders(
    ctx: ReportContext, start: date, end: date
) -> dict[str, tuple[int, float, float]]:
    q = ctx.view(
        "quotes",
        {"kind": sql.TEXT, "status": sql.TEXT, "ordered_day": sql.F("ordered_at", sql.DAY)},
        "orders",
    )
    line = ctx.view(
        "quote_lines",
        {
            "quote_id": sql.TEXT,
            "product_id": sql.TEXT,
            "quantity": sql.NUMBER,
            "unit_price": sql.NUMBER,
            "discount": sql.NUMBER,
            "line_total": sql.NUMBER,
        },
        "lines",
    )
    day = func.coalesce(q.c.ordered_day, sql.created_day(ctx.dialect, q.c.created_at_ms))
    revenue = func.coalesce(
        line.c.line_total,
        line.c.quantity * line.c.unit_price * (1 - func.coalesce(line.c.discount, 0)),
    )
    stmt = (
        select(
            line.c.product_id,
            func.count(func.distinct(q.c.id)),
            func.sum(func.coalesce(line.c.quantity, 0)),
            func.sum(revenue),
        )
        .select_from(line)
        .join(q, q.c.id == line.c.quote_id)
        .where(
            q.c.kind == "order",
            q.c.status.in_(PLACED_ORDER_STATUSES),
            day >= start.isoformat(),
            day <= end.isoformat(),
        )
        .group_by(line.c.product_id)
    )
    return {r[0]: (int(r[1]), round(float(r[2] or 0), 4), sql.money(r[3])) for r in ctx.rows(stmt)}


def product_performance(ctx: ReportContext, start: date, end: date) -> ProductReport:
    p = ctx.view("products", {"name": sql.TEXT, "sku": sql.TEXT, "category": sql.TEXT}, "products")
    catalogue = {r.id: r for r in ctx.rows(select(p))}
    targets = _product_targets(ctx, start, end)
    won = _product_won(ctx, start, end)
    orders = _product_orders(ctx, start, end)
    ids = set(catalogue) | set(targets) | set(won) | set(orders)
    names: dict[str, Any] = defaultdict(lambda: None, {k: v for k, v in catalogue.items()})
    out = []
    for pid in ids:
        row = names[pid]
        won_n, won_amount = won.get(pid, (0, 0.0))
        n_orders, quantity, revenue = orders.get(pid, (0, 0.0, 0.0))
        goal = targets.get(pid, 0.0)
        out.append(
            ProductPerformance(
                product_id=pid,
                name=str(row.name if row is not None and row.name else pid),
                sku=row.sku if row is not None else None,
                category=row.category if row is not None else None,
                target=goal,
                won_count=won_n,
                won_amount=won_amount,
                orders=n_orders,
                quantity=quantity,
                order_revenue=revenue,
                attainment=sql.ratio(revenue, goal),
            )
        )
    out.sort(key=lambda x: (-x.order_revenue, -x.won_amount, x.name, x.product_id))
    return ProductReport(start=start, end=end, products=out)
