"""Customer analysis (客户分析): the customers in scope by lifecycle status, tier, source
and industry.

Per value of each dimension: how many customers (and their share of all), how many of
them have an open deal, the open pipeline (Σ ``amount`` of open opportunities) and the
won amount (Σ ``amount`` of won opportunities, optionally only those closed on a day of
``[start, end]``). A customer without the field counts under ``null`` ("Not set").

One SQL statement groups the customers by all four fields at once (joined with their
per-customer deal sums); the few resulting combinations are rolled up per dimension.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from functools import partial
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import case, func, select

from sync_protocol import CRM_SCHEMA

from . import sql
from .base import ReportContext

DIMENSIONS = ("status", "tier", "source", "industry")


class CustomerGroup(BaseModel):
    value: str | None = Field(description="The code (industry: the text); null when not set.")
    label: str = Field(description="In the requested language.")
    customers: int
    share: float | None
    with_open_deals: int
    open_pipeline: float
    won_amount: float


class CustomerDimension(BaseModel):
    dimension: str
    label: str
    groups: list[CustomerGroup]


class CustomerReport(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "lang": "zh",
                    "start": None,
                    "end": None,
                    "total": 120,
                    "dimensions": [
                        {
                            "dimension": "tier",
                            "label": "等级",
                            "groups": [
                                {
                                    "value": "high",
                                    "label": "高",
                                    "customers": 30,
                                    "share": 0.25,
                                    "with_open_deals": 12,
                                    "open_pipeline": 480000,
                                    "won_amount": 1250000,
                                }
                            ],
                        }
                    ],
                }
            ]
        }
    )

    lang: str
    start: date | None
    end: date | None
    total: int
    dimensions: list[CustomerDimension]


def _order(dimension: str, group: CustomerGroup) -> tuple[Any, ...]:
    """Enum values in the schema's order, industries by size; "not set" last."""
    choices = CRM_SCHEMA["customers"].fields[dimension].choices
    if group.value is None:
        return (1, 0, "")
    if choices:
        rank = choices.index(group.value) if group.value in choices else len(choices)
        return (0, rank, group.value)
    return (0, -group.customers, group.value)


def customer_analysis(
    ctx: ReportContext, start: date | None = None, end: date | None = None
) -> CustomerReport:
    c = ctx.view("customers", {d: sql.TEXT for d in DIMENSIONS}, "customers")
    o = ctx.view(
        "opportunities",
        {"status": sql.TEXT, "amount": sql.NUMBER, "closed_day": sql.F("closed_at", sql.DAY)},
        "opps",
    )
    amount = func.coalesce(o.c.amount, 0)
    won = o.c.status == "won"
    if start is not None:
        won = won & (o.c.closed_day >= start.isoformat())
    if end is not None:
        won = won & (o.c.closed_day <= end.isoformat())
    deals = (
        select(
            o.c.customer_id,
            func.sum(case((o.c.status == "open", amount), else_=0)).label("open_amount"),
            func.sum(case((o.c.status == "open", 1), else_=0)).label("open_count"),
            func.sum(case((won, amount), else_=0)).label("won_amount"),
        )
        .group_by(o.c.customer_id)
        .subquery("deals")
    )
    keys = [c.c[d] for d in DIMENSIONS]
    stmt = (
        select(
            *keys,
            func.count(),
            func.sum(case((deals.c.open_count > 0, 1), else_=0)),
            func.sum(func.coalesce(deals.c.open_amount, 0)),
            func.sum(func.coalesce(deals.c.won_amount, 0)),
        )
        .select_from(c.outerjoin(deals, deals.c.customer_id == c.c.id))
        .group_by(*keys)
    )
    combos = ctx.rows(stmt)
    total = sum(int(r[4]) for r in combos)
    dimensions = []
    for i, dim in enumerate(DIMENSIONS):
        sums: dict[Any, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
        for r in combos:
            acc = sums[r[i]]
            for j in range(4):
                acc[j] += float(r[4 + j] or 0)
        groups = [
            CustomerGroup(
                value=value,
                label=(
                    value if dim == "industry" and value else ctx.choice("customers", dim, value)
                ),
                customers=int(acc[0]),
                share=sql.ratio(acc[0], total),
                with_open_deals=int(acc[1]),
                open_pipeline=sql.money(acc[2]),
                won_amount=sql.money(acc[3]),
            )
            for value, acc in sums.items()
        ]
        groups.sort(key=partial(_order, dim))
        dimensions.append(
            CustomerDimension(dimension=dim, label=ctx.field_label("customers", dim), groups=groups)
        )
    return CustomerReport(lang=ctx.lang, start=start, end=end, total=total, dimensions=dimensions)
