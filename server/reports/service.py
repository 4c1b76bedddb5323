"""The service desk (服务): open tickets, SLA, resolution time and satisfaction.

Definitions, for the tickets in scope:

* *open* — status ``open`` or ``in_progress``; *overdue* — open with ``sla_due_at``
  before ``as_of``;
* *resolution hours* — from ``opened_at`` to ``resolved_at``, for tickets having both;
* *SLA met* — of the tickets with both ``resolved_at`` and ``sla_due_at``, those
  resolved by the due time; ``sla_met_rate = met ÷ those``;
* *satisfaction* — the ticket's own ``satisfaction`` score (1–5); *survey* — the
  ``satisfaction_responses`` of the customers in scope (their ``score``).

Broken down by status, by priority and by agent (``assignee_id``). One SQL statement
groups the tickets by (status, priority, agent) with sums and counts; the handful of
groups are rolled up per breakdown, so every average is exact (Σ ÷ n, never a mean of
means).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import case, func, select

from . import sql
from .base import ReportContext

OPEN = ("open", "in_progress")
STATUS_ORDER = ("open", "in_progress", "resolved", "closed")
PRIORITY_ORDER = ("urgent", "high", "normal", "low")


class Figures(BaseModel):
    count: int
    open: int
    overdue: int
    avg_resolution_hours: float | None
    sla_met_rate: float | None
    avg_satisfaction: float | None


class StatusFigures(Figures):
    status: str | None
    label: str


class PriorityFigures(Figures):
    priority: str | None
    label: str


class AgentFigures(Figures):
    assignee_id: str | None
    name: str


class TicketReport(Figures):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "lang": "en",
                    "as_of": "2026-11-23T12:00:00Z",
                    "total": 5,
                    "count": 5,
                    "open": 2,
                    "overdue": 1,
                    "avg_resolution_hours": 20.67,
                    "sla_met_rate": 0.5,
                    "avg_satisfaction": 3.67,
                    "survey_responses": 4,
                    "avg_survey_score": 4.25,
                    "statuses": [
                        {
                            "status": "resolved",
                            "label": "Resolved",
                            "count": 2,
                            "open": 0,
                            "overdue": 0,
                            "avg_resolution_hours": 24.0,
                            "sla_met_rate": 1.0,
                            "avg_satisfaction": 4.5,
                        }
                    ],
                    "priorities": [],
                    "agents": [],
                }
            ]
        }
    )

    lang: str
    as_of: datetime
    total: int = Field(description="Tickets in scope (same as count).")
    survey_responses: int
    avg_survey_score: float | None
    statuses: list[StatusFigures]
    priorities: list[PriorityFigures]
    agents: list[AgentFigures]


# Positions of the sums in one grouped row, after the three keys.
_N, _OPEN, _OVERDUE, _HOURS, _HOURS_N, _MET, _SLA_N, _SAT, _SAT_N = range(3, 12)


def _grouped(ctx: ReportContext, as_of: datetime) -> Sequence[Any]:
    t = ctx.view(
        "tickets",
        {
            "status": sql.TEXT,
            "priority": sql.TEXT,
            "assignee_id": sql.TEXT,
            "opened_at": sql.EPOCH,
            "resolved_at": sql.EPOCH,
            "sla_due_at": sql.EPOCH,
            "satisfaction": sql.NUMBER,
        },
        "tickets",
    )
    is_open = t.c.status.in_(OPEN)
    both = t.c.opened_at.is_not(None) & t.c.resolved_at.is_not(None)
    with_sla = t.c.resolved_at.is_not(None) & t.c.sla_due_at.is_not(None)
    hours = (t.c.resolved_at - t.c.opened_at) / 3600.0
    stmt = select(
        t.c.status,
        t.c.priority,
        t.c.assignee_id,
        func.count(),
        func.sum(case((is_open, 1), else_=0)),
        func.sum(case((is_open & (t.c.sla_due_at < as_of.timestamp()), 1), else_=0)),
        func.sum(case((both, hours), else_=0)),
        func.sum(case((both, 1), else_=0)),
        func.sum(case((with_sla & (t.c.resolved_at <= t.c.sla_due_at), 1), else_=0)),
        func.sum(case((with_sla, 1), else_=0)),
        func.sum(func.coalesce(t.c.satisfaction, 0)),
        func.count(t.c.satisfaction),
    ).group_by(t.c.status, t.c.priority, t.c.assignee_id)
    return ctx.rows(stmt)


def _figures(rows: Sequence[Any]) -> dict[str, Any]:
    s = [sum(float(r[i] or 0) for r in rows) for i in range(_N, _SAT_N + 1)]
    n, opened, overdue, hours, hours_n, met, sla_n, sat, sat_n = s
    return {
        "count": int(n),
        "open": int(opened),
        "overdue": int(overdue),
        "avg_resolution_hours": sql.ratio(hours, hours_n, 2),
        "sla_met_rate": sql.ratio(met, sla_n),
        "avg_satisfaction": sql.ratio(sat, sat_n, 2),
    }


def _by(
    rows: Sequence[Any], index: int, order: Callable[[Any], Any]
) -> list[tuple[Any, dict[str, Any]]]:
    groups: dict[Any, list[Any]] = defaultdict(list)
    for r in rows:
        groups[r[index]].append(r)
    return [(key, _figures(groups[key])) for key in sorted(groups, key=order)]


def _rank(order: tuple[str, ...]) -> Callable[[Any], Any]:
    return lambda v: (v is None, order.index(v) if v in order else len(order), v or "")


def _survey(ctx: ReportContext) -> tuple[int, float | None]:
    r = ctx.view("satisfaction_responses", {"score": sql.NUMBER}, "survey")
    n, total = ctx.rows(select(func.count(r.c.score), func.sum(r.c.score)))[0]
    return int(n), sql.ratio(total, n, 2)


def tickets(ctx: ReportContext, as_of: datetime) -> TicketReport:
    rows = _grouped(ctx, as_of)
    names = ctx.people(reps_only=False)
    survey_n, survey_avg = _survey(ctx)
    overall = _figures(rows)
    return TicketReport(
        lang=ctx.lang,
        as_of=as_of,
        total=overall["count"],
        survey_responses=survey_n,
        avg_survey_score=survey_avg,
        statuses=[
            StatusFigures(status=k, label=ctx.choice("tickets", "status", k), **f)
            for k, f in _by(rows, 0, _rank(STATUS_ORDER))
        ],
        priorities=[
            PriorityFigures(priority=k, label=ctx.choice("tickets", "priority", k), **f)
            for k, f in _by(rows, 1, _rank(PRIORITY_ORDER))
        ],
        agents=[
            AgentFigures(
                assignee_id=k,
                name=names.get(k, k) if k else ctx.choice("tickets", "assignee_id", None),
                **f,
            )
            for k, f in _by(rows, 2, lambda v: (v is None, names.get(v, v or "")))
        ],
        **overall,
    )
