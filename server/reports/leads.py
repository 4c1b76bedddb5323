"""Lead conversion (线索转化): per source, per rep and per status.

A lead is *converted* when its ``status`` is ``converted`` or it carries a
``converted_customer_id``. *Days to convert* runs from the lead's arrival on the server
to its ``converted_at`` (converted leads having one). With ``start``/``end`` only the
leads that arrived on those days (UTC) count.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import case, func, or_, select

from . import sql
from .base import ReportContext


class LeadFigures(BaseModel):
    leads: int
    converted: int
    conversion_rate: float | None
    avg_days_to_convert: float | None


class LeadSource(LeadFigures):
    source: str = Field(description='The source code, or "unknown".')
    label: str


class LeadOwner(LeadFigures):
    owner_id: str | None
    name: str


class LeadStatus(BaseModel):
    status: str | None
    label: str
    leads: int


class LeadConversionReport(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "lang": "zh",
                    "start": None,
                    "end": None,
                    "sources": [
                        {
                            "source": "web",
                            "label": "官网",
                            "leads": 3,
                            "converted": 2,
                            "conversion_rate": 0.6667,
                            "avg_days_to_convert": 4.5,
                        }
                    ],
                    "owners": [],
                    "statuses": [],
                    "total_leads": 3,
                    "total_converted": 2,
                    "conversion_rate": 0.6667,
                }
            ]
        }
    )

    lang: str
    start: date | None
    end: date | None
    sources: list[LeadSource]
    owners: list[LeadOwner]
    statuses: list[LeadStatus]
    total_leads: int
    total_converted: int
    conversion_rate: float | None


def _grouped(ctx: ReportContext, start: date | None, end: date | None) -> Sequence[Any]:
    lead = ctx.view(
        "leads",
        {
            "source": sql.TEXT,
            "status": sql.TEXT,
            "converted_customer_id": sql.TEXT,
            "converted_at": sql.EPOCH,
        },
        "leads",
    )
    converted = or_(lead.c.status == "converted", lead.c.converted_customer_id.is_not(None))
    timed = converted & lead.c.converted_at.is_not(None)
    days = (lead.c.converted_at - lead.c.created_at_ms / 1000.0) / 86400.0
    stmt = select(
        lead.c.source,
        lead.c.owner_id,
        lead.c.status,
        func.count(),
        func.sum(case((converted, 1), else_=0)),
        func.sum(case((timed, days), else_=0)),
        func.sum(case((timed, 1), else_=0)),
    ).group_by(lead.c.source, lead.c.owner_id, lead.c.status)
    arrived = sql.created_day(ctx.dialect, lead.c.created_at_ms)
    if start is not None:
        stmt = stmt.where(arrived >= start.isoformat())
    if end is not None:
        stmt = stmt.where(arrived <= end.isoformat())
    return ctx.rows(stmt)


def _figures(rows: Sequence[Any]) -> dict[str, Any]:
    n, conv, days, timed = (sum(float(r[i] or 0) for r in rows) for i in range(3, 7))
    return {
        "leads": int(n),
        "converted": int(conv),
        "conversion_rate": sql.ratio(conv, n),
        "avg_days_to_convert": sql.ratio(days, timed, 2),
    }


def _split(rows: Sequence[Any], index: int) -> dict[Any, list[Any]]:
    groups: dict[Any, list[Any]] = defaultdict(list)
    for r in rows:
        groups[r[index]].append(r)
    return groups


def lead_conversion(
    ctx: ReportContext, start: date | None = None, end: date | None = None
) -> LeadConversionReport:
    rows = _grouped(ctx, start, end)
    names = ctx.people(reps_only=False)
    by_source = _split(rows, 0)
    sources = [
        LeadSource(
            source=key or "unknown", label=ctx.choice("leads", "source", key), **_figures(group)
        )
        for key, group in by_source.items()
    ]
    sources.sort(key=lambda s: s.source)
    owners = [
        LeadOwner(owner_id=key, name=names.get(key or "", key or ""), **_figures(group))
        for key, group in _split(rows, 1).items()
    ]
    owners.sort(key=lambda o: (o.name, o.owner_id or ""))
    choices = ("new", "contacted", "qualified", "disqualified", "converted")
    statuses = [
        LeadStatus(
            status=key,
            label=ctx.choice("leads", "status", key),
            leads=int(sum(float(r[3]) for r in group)),
        )
        for key, group in _split(rows, 2).items()
    ]
    statuses.sort(key=lambda s: choices.index(s.status) if s.status in choices else 99)
    total = _figures(rows)
    return LeadConversionReport(
        lang=ctx.lang,
        start=start,
        end=end,
        sources=sources,
        owners=owners,
        statuses=statuses,
        total_leads=total["leads"],
        total_converted=total["converted"],
        conversion_rate=total["conversion_rate"],
    )
