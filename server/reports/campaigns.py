"""Campaigns (营销活动): reach, conversion and revenue per campaign, in the caller's scope.

Campaigns themselves are reference data every manager sees; **their members are not**.
A member counts for a manager only when the member's customer, or else its lead, is in
the manager's scope (an admin counts every member). So one team's manager never sees how
many of another team's customers a campaign reached, converted or earned.

Per campaign: *members*; *engaged* (status responded, attended or converted);
*conversions* (status converted) and ``conversion_rate = conversions ÷ members``;
*revenue* = Σ member ``revenue``; *cost* = ``cost``, else ``budget``;
``roi = (revenue − cost) ÷ cost``; *leads* carrying the campaign and how many of them
converted; *won* opportunities carrying the campaign and their amount.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, case, func, or_, select, true

from . import sql
from .base import ReportContext

ENGAGED = ("responded", "attended", "converted")


class CampaignResult(BaseModel):
    campaign_id: str
    name: str
    channel: str | None
    channel_label: str
    status: str | None
    status_label: str
    members: int
    engaged: int
    conversions: int
    conversion_rate: float | None
    revenue: float
    cost: float
    roi: float | None = Field(description="(revenue − cost) ÷ cost; null when cost is 0")
    leads: int
    converted_leads: int
    won_count: int
    won_amount: float


class CampaignReport(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "lang": "en",
                    "campaigns": [
                        {
                            "campaign_id": "k1",
                            "name": "Expo",
                            "channel": "event",
                            "channel_label": "Event",
                            "status": "finished",
                            "status_label": "Finished",
                            "members": 3,
                            "engaged": 2,
                            "conversions": 2,
                            "conversion_rate": 0.6667,
                            "revenue": 4000,
                            "cost": 2000,
                            "roi": 1.0,
                            "leads": 5,
                            "converted_leads": 2,
                            "won_count": 1,
                            "won_amount": 12000,
                        }
                    ],
                }
            ]
        }
    )

    lang: str
    campaigns: list[CampaignResult]


def _member_visible(ctx: ReportContext, member_customer: Any, member_lead: Any) -> Any:
    """Below admin: the member's customer or lead is in the caller's scope."""
    if ctx.principal.role == "admin":
        return true()
    customers = ctx.view("customers", {}, "member_customers")
    leads = ctx.view("leads", {}, "member_leads")
    return or_(
        member_customer.in_(select(customers.c.id)),
        member_lead.in_(select(leads.c.id)),
    )


def _members(ctx: ReportContext) -> dict[str, Any]:
    m = ctx.view(
        "campaign_members",
        {
            "campaign_id": sql.TEXT,
            "member_customer": sql.F("customer_id", sql.TEXT),
            "lead_id": sql.TEXT,
            "status": sql.TEXT,
            "revenue": sql.NUMBER,
        },
        "members",
    )
    visible: ColumnElement[bool] = _member_visible(ctx, m.c.member_customer, m.c.lead_id)
    stmt = (
        select(
            m.c.campaign_id,
            func.count(),
            func.sum(case((m.c.status.in_(ENGAGED), 1), else_=0)),
            func.sum(case((m.c.status == "converted", 1), else_=0)),
            func.sum(func.coalesce(m.c.revenue, 0)),
        )
        .where(visible)
        .group_by(m.c.campaign_id)
    )
    return {r[0]: r for r in ctx.rows(stmt)}


def _leads(ctx: ReportContext) -> dict[str, Any]:
    lead = ctx.view(
        "leads",
        {"campaign_id": sql.TEXT, "status": sql.TEXT, "converted_customer_id": sql.TEXT},
        "leads",
    )
    converted = or_(lead.c.status == "converted", lead.c.converted_customer_id.is_not(None))
    stmt = (
        select(lead.c.campaign_id, func.count(), func.sum(case((converted, 1), else_=0)))
        .where(lead.c.campaign_id.is_not(None))
        .group_by(lead.c.campaign_id)
    )
    return {r[0]: r for r in ctx.rows(stmt)}


def _won(ctx: ReportContext) -> dict[str, Any]:
    o = ctx.view(
        "opportunities",
        {"campaign_id": sql.TEXT, "status": sql.TEXT, "amount": sql.NUMBER},
        "opps",
    )
    stmt = (
        select(o.c.campaign_id, func.count(), func.sum(func.coalesce(o.c.amount, 0)))
        .where(o.c.status == "won", o.c.campaign_id.is_not(None))
        .group_by(o.c.campaign_id)
    )
    return {r[0]: r for r in ctx.rows(stmt)}


def campaigns(ctx: ReportContext) -> CampaignReport:
    k = ctx.view(
        "campaigns",
        {
            "name": sql.TEXT,
            "channel": sql.TEXT,
            "status": sql.TEXT,
            "budget": sql.NUMBER,
            "cost": sql.NUMBER,
        },
        "campaigns",
    )
    members, leads, won = _members(ctx), _leads(ctx), _won(ctx)
    out = []
    for c in ctx.rows(select(k).order_by(k.c.name, k.c.id)):
        m = members.get(c.id)
        n = int(m[1]) if m else 0
        conversions = int(m[3]) if m else 0
        revenue = sql.money(m[4]) if m else 0.0
        cost = sql.money(c.cost if c.cost is not None else c.budget)
        lead_row, won_row = leads.get(c.id), won.get(c.id)
        out.append(
            CampaignResult(
                campaign_id=c.id,
                name=str(c.name or c.id),
                channel=c.channel,
                channel_label=ctx.choice("campaigns", "channel", c.channel),
                status=c.status,
                status_label=ctx.choice("campaigns", "status", c.status),
                members=n,
                engaged=int(m[2]) if m else 0,
                conversions=conversions,
                conversion_rate=sql.ratio(conversions, n),
                revenue=revenue,
                cost=cost,
                roi=sql.ratio(revenue - cost, cost),
                leads=int(lead_row[1]) if lead_row else 0,
                converted_leads=int(lead_row[2]) if lead_row else 0,
                won_count=int(won_row[1]) if won_row else 0,
                won_amount=sql.money(won_row[2]) if won_row else 0.0,
            )
        )
    return CampaignReport(lang=ctx.lang, campaigns=out)
