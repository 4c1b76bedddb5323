"""The sales funnel: live deals per pipeline stage, and stage-to-stage conversion.

* **Live deals** are opportunities with ``status = "open"`` standing in a stage that is
  neither a won nor a lost stage (``is_won`` / ``is_lost``). Per stage: their count, the
  sum of ``amount`` and the probability-weighted amount Σ amount × p, where p is the
  deal's own ``probability``, else its stage's, else 0.
* **Conversion** counts every deal in scope, open or closed. A deal *reached* a stage
  when its current stage or any stage it passed through (``stage_changes``, from and to)
  is at that stage's position or later; a won deal (``status = "won"`` or a won stage)
  reached every stage. Lost stages mark no progress. For each live stage in order,
  ``advanced`` is how many of the deals that reached it reached the next live stage (for
  the last one: were won), and ``conversion_rate = advanced ÷ reached``.

All counting happens in SQL; Python only accumulates the small ``position → deals``
histogram into the cumulative ``reached`` figures.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, case, func, literal, select, true

from . import sql
from .base import ReportContext

#: A position beyond every stage: where won deals stand for the conversion count.
WON = 1_000_000_000


class FunnelStage(BaseModel):
    stage_id: str
    name: str = Field(description="In the requested language (`name_zh` for zh when set).")
    position: int | None = Field(description="Null for a stage id no stage record has.")
    probability: float | None
    count: int = Field(description="Live deals standing in this stage.")
    amount: float
    weighted_amount: float
    reached: int | None = Field(description="Deals (open or closed) that reached the stage.")
    advanced: int | None = Field(description="Of those, deals that reached the next stage.")
    conversion_rate: float | None = Field(description="advanced ÷ reached")


class FunnelReport(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "lang": "zh",
                    "stages": [
                        {
                            "stage_id": "s2",
                            "name": "方案报价",
                            "position": 2,
                            "probability": 0.5,
                            "count": 2,
                            "amount": 5000,
                            "weighted_amount": 3100,
                            "reached": 6,
                            "advanced": 3,
                            "conversion_rate": 0.5,
                        }
                    ],
                    "total_count": 2,
                    "total_amount": 5000,
                    "total_weighted_amount": 3100,
                    "deals": 8,
                    "won": 3,
                    "win_rate": 0.375,
                }
            ]
        }
    )

    lang: str
    stages: list[FunnelStage]
    total_count: int
    total_amount: float
    total_weighted_amount: float
    deals: int = Field(description="Opportunities in scope, open or closed.")
    won: int = Field(description="Of those, won.")
    win_rate: float | None = Field(description="won ÷ deals")


def stages(ctx: ReportContext) -> list[Any]:
    """The pipeline stages (id, name, name_zh, position, probability, is_won, is_lost)."""
    v = ctx.view(
        "pipeline_stages",
        {
            "name": sql.TEXT,
            "name_zh": sql.TEXT,
            "position": sql.NUMBER,
            "probability": sql.NUMBER,
            "is_won": sql.FLAG,
            "is_lost": sql.FLAG,
        },
        "stages",
    )
    return list(ctx.rows(select(v).order_by(v.c.position, v.c.id)))


def _lookup(column: Any, values: dict[str, Any]) -> ColumnElement[Any]:
    """``column`` (a stage id) mapped through ``values`` — the stages are a handful of
    reference rows, so a CASE beats a join the planner would have to estimate."""
    if not values:
        return literal(None)
    return case(*((column == k, literal(v)) for k, v in values.items()), else_=None)


def _live(ctx: ReportContext, stages: list[Any]) -> dict[str, Any]:
    o = ctx.view(
        "opportunities",
        {"stage_id": sql.TEXT, "status": sql.TEXT, "amount": sql.NUMBER, "probability": sql.NUMBER},
        "opps",
    )
    closing = [s.id for s in stages if s.is_won or s.is_lost]
    stage_p = _lookup(
        o.c.stage_id, {s.id: s.probability for s in stages if s.probability is not None}
    )
    amount = func.coalesce(o.c.amount, 0)
    stmt = (
        select(
            o.c.stage_id,
            func.count(),
            func.sum(amount),
            func.sum(amount * func.coalesce(o.c.probability, stage_p, 0)),
        )
        .where(o.c.status == "open", o.c.stage_id.not_in(closing) if closing else true())
        .group_by(o.c.stage_id)
    )
    return {str(row[0]): row for row in ctx.rows(stmt)}


def _greatest(ctx: ReportContext, *values: Any) -> ColumnElement[Any]:
    """The largest of ``values`` (each already non-NULL)."""
    if ctx.dialect == "postgresql":
        return func.greatest(*values)
    return func.max(*values)  # SQLite's scalar max()


def _reach_histogram(ctx: ReportContext, stages: list[Any]) -> tuple[dict[float, int], int, int]:
    """(furthest position → deals, deals, won deals); -1 stands for "no progress"."""
    progress = {s.id: WON if s.is_won else -1 if s.is_lost else float(s.position) for s in stages}
    o = ctx.view("opportunities", {"stage_id": sql.TEXT, "status": sql.TEXT}, "opps")
    c = ctx.view(
        "stage_changes",
        {"opportunity_id": sql.TEXT, "from_stage_id": sql.TEXT, "to_stage_id": sql.TEXT},
        "changes",
    )
    passed = (
        select(
            c.c.opportunity_id,
            func.max(
                _greatest(
                    ctx,
                    func.coalesce(_lookup(c.c.from_stage_id, progress), -1),
                    func.coalesce(_lookup(c.c.to_stage_id, progress), -1),
                )
            ).label("top"),
        )
        .group_by(c.c.opportunity_id)
        .subquery("passed")
    )
    current = case(
        (o.c.status == "won", literal(WON)),
        else_=func.coalesce(_lookup(o.c.stage_id, progress), -1),
    )
    top = _greatest(ctx, current, func.coalesce(passed.c.top, -1)).label("top")
    reach = (
        select(top).select_from(o.outerjoin(passed, passed.c.opportunity_id == o.c.id)).subquery()
    )
    histogram: dict[float, int] = {}
    deals = won = 0
    for furthest, n in ctx.rows(select(reach.c.top, func.count()).group_by(reach.c.top)):
        deals += int(n)
        if furthest is None or float(furthest) < 0:
            continue
        histogram[float(furthest)] = int(n)
        if float(furthest) >= WON:
            won += int(n)
    return histogram, deals, won


def funnel(ctx: ReportContext) -> FunnelReport:
    stage_rows = stages(ctx)
    live = _live(ctx, stage_rows)
    histogram, deals, won = _reach_histogram(ctx, stage_rows)
    ordered = [s for s in stage_rows if not s.is_won and not s.is_lost]

    def reached(position: float) -> int:
        return sum(n for top, n in histogram.items() if top >= position)

    out: list[FunnelStage] = []
    for i, s in enumerate(ordered):
        got = reached(float(s.position))
        nxt = reached(float(ordered[i + 1].position)) if i + 1 < len(ordered) else won
        out.append(_stage(ctx, s.id, s, live.get(s.id), got, nxt))
    known = {s.id for s in stage_rows}
    for stage_id in sorted(set(live) - known):  # a stage id no stage record has
        out.append(_stage(ctx, stage_id, None, live[stage_id], None, None))
    return FunnelReport(
        lang=ctx.lang,
        stages=out,
        total_count=sum(s.count for s in out),
        total_amount=sql.money(sum(s.amount for s in out)),
        total_weighted_amount=sql.money(sum(s.weighted_amount for s in out)),
        deals=deals,
        won=won,
        win_rate=sql.ratio(won, deals),
    )


def _stage(
    ctx: ReportContext,
    stage_id: str,
    stage: Any,
    live: Any,
    reached: int | None,
    advanced: int | None,
) -> FunnelStage:
    fields: Mapping[str, Any] = stage._mapping if stage is not None else {}
    name = fields.get("name") or stage_id
    if ctx.lang == "zh" and fields.get("name_zh"):
        name = fields["name_zh"]
    position = fields.get("position")
    return FunnelStage(
        stage_id=stage_id,
        name=str(name),
        position=int(position) if position is not None else None,
        probability=sql.as_float(fields.get("probability")),
        count=int(live[1]) if live is not None else 0,
        amount=sql.money(live[2] if live is not None else None),
        weighted_amount=sql.money(live[3] if live is not None else None),
        reached=reached,
        advanced=advanced,
        conversion_rate=sql.ratio(advanced, reached),
    )
