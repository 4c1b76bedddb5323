"""``/v1/manager/reports/…``: every report as JSON, or as CSV with ``?format=csv`` (one
flat row per line item, for spreadsheets). Labels follow ``?lang=zh|en`` (else the
``Accept-Language`` header, else English). Managers see their team, admins everyone."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Header, Query, Response
from pydantic import BaseModel

from sync_protocol.labels import Language

from ..deps import SessionDep
from ..manager.common import IsoDate, IsoDateTime, ManagerAuth, error_responses
from ..manager.csvout import csv_text
from . import campaigns as campaigns_report
from . import customers as customers_report
from . import followups, leads, performance, service
from . import funnel as funnel_report
from .base import Period, ReportContext

router = APIRouter(prefix="/v1/manager/reports", tags=["manager: reports"])

Format = Annotated[Literal["json", "csv"], Query(description="`csv` for a spreadsheet.")]
LangQuery = Annotated[
    Language | None, Query(description="Labels in `zh` or `en` (default: Accept-Language).")
]
Start = Annotated[IsoDate, Query(description="First day of the period.")]
End = Annotated[IsoDate, Query(description="Last day of the period (inclusive).")]
OptStart = Annotated[IsoDate | None, Query(description="First day (optional).")]
OptEnd = Annotated[IsoDate | None, Query(description="Last day, inclusive (optional).")]
R = TypeVar("R", bound=BaseModel)


def _responses() -> dict[int | str, dict[str, Any]]:
    responses = error_responses()
    responses[200] = {
        "description": "The report as JSON, or as CSV with `?format=csv`.",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
    return responses


def _context(
    auth: ManagerAuth, session: SessionDep, lang: Language | None, accept: str | None
) -> ReportContext:
    if lang is None:
        lang = "zh" if (accept or "").strip().lower().startswith("zh") else "en"
    return ReportContext(session, auth.principal, lang)


def _answer(
    report: R, fmt: str, lines: Callable[[R], list[dict[str, Any]]], columns: list[str]
) -> R | Response:
    if fmt == "csv":
        return Response(csv_text(lines(report), columns), media_type="text/csv; charset=utf-8")
    return report


def _flat(model: type[BaseModel]) -> list[str]:
    """The scalar fields of a line model (nested lists are separate CSV rows)."""
    return [
        name
        for name, info in model.model_fields.items()
        if not str(info.annotation).startswith("list[")
    ]


AcceptLanguage = Annotated[str | None, Header(include_in_schema=False)]


@router.get("/funnel", response_model=funnel_report.FunnelReport, responses=_responses())
def funnel(
    auth: ManagerAuth,
    session: SessionDep,
    lang: LangQuery = None,
    accept_language: AcceptLanguage = None,
    format: Format = "json",
) -> Any:
    """Live deals by pipeline stage (count, amount, weighted amount) and the
    stage-to-stage conversion of every deal."""
    report = funnel_report.funnel(_context(auth, session, lang, accept_language))
    return _answer(
        report,
        format,
        lambda r: [s.model_dump() for s in r.stages],
        _flat(funnel_report.FunnelStage),
    )


def _performance_lines(report: performance.PerformanceReport) -> list[dict[str, Any]]:
    lines = []
    for rep in report.reps:
        for figures in [rep, *rep.periods]:
            lines.append({"rep_id": rep.rep_id, "name": rep.name, **figures.model_dump()})
    return lines


@router.get(
    "/rep-performance", response_model=performance.PerformanceReport, responses=_responses()
)
def rep_performance(
    auth: ManagerAuth,
    session: SessionDep,
    start: Start,
    end: End,
    period: Annotated[Period, Query(description="Also cut the window into periods.")] = "all",
    format: Format = "json",
) -> Any:
    """Each rep against their sales targets: won amount, attainment, win rate, cycle
    time, activities — for the window and, when asked, per month/quarter/year."""
    ctx = ReportContext(session, auth.principal)
    report = performance.rep_performance(ctx, start, end, period)
    return _answer(
        report,
        format,
        _performance_lines,
        ["rep_id", "name", *_flat(performance.PeriodFigures)],
    )


@router.get(
    "/product-performance", response_model=performance.ProductReport, responses=_responses()
)
def product_performance(
    auth: ManagerAuth, session: SessionDep, start: Start, end: End, format: Format = "json"
) -> Any:
    """Each product against its targets: won deals, placed orders, quantity, revenue."""
    report = performance.product_performance(ReportContext(session, auth.principal), start, end)
    return _answer(
        report,
        format,
        lambda r: [p.model_dump() for p in r.products],
        _flat(performance.ProductPerformance),
    )


def _customer_lines(report: customers_report.CustomerReport) -> list[dict[str, Any]]:
    return [
        {"dimension": d.dimension, **g.model_dump()} for d in report.dimensions for g in d.groups
    ]


@router.get("/customers", response_model=customers_report.CustomerReport, responses=_responses())
def customers(
    auth: ManagerAuth,
    session: SessionDep,
    start: OptStart = None,
    end: OptEnd = None,
    lang: LangQuery = None,
    accept_language: AcceptLanguage = None,
    format: Format = "json",
) -> Any:
    """Customers by status, tier, source and industry, with their open pipeline and
    won amount (won deals closed between ``start`` and ``end`` when given)."""
    ctx = _context(auth, session, lang, accept_language)
    report = customers_report.customer_analysis(ctx, start, end)
    return _answer(
        report,
        format,
        _customer_lines,
        ["dimension", *_flat(customers_report.CustomerGroup)],
    )


@router.get("/campaigns", response_model=campaigns_report.CampaignReport, responses=_responses())
def campaigns(
    auth: ManagerAuth,
    session: SessionDep,
    lang: LangQuery = None,
    accept_language: AcceptLanguage = None,
    format: Format = "json",
) -> Any:
    """Campaign members (of the customers and leads in scope), conversions, revenue,
    ROI, leads and won deals."""
    report = campaigns_report.campaigns(_context(auth, session, lang, accept_language))
    return _answer(
        report,
        format,
        lambda r: [c.model_dump() for c in r.campaigns],
        _flat(campaigns_report.CampaignResult),
    )


def _ticket_lines(report: service.TicketReport) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    for kind, rows in (
        ("status", report.statuses),
        ("priority", report.priorities),
        ("agent", report.agents),
    ):
        for row in rows:
            data = row.model_dump()
            key = data.pop(
                {"status": "status", "priority": "priority", "agent": "assignee_id"}[kind]
            )
            label = data.pop("label", None) or data.pop("name", None)
            lines.append({"breakdown": kind, "key": key, "label": label, **data})
    return lines


def _now(value: datetime | None) -> datetime:
    moment = value or datetime.now(UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@router.get("/tickets", response_model=service.TicketReport, responses=_responses())
def tickets(
    auth: ManagerAuth,
    session: SessionDep,
    as_of: Annotated[IsoDateTime | None, Query(description="Default: now (UTC).")] = None,
    lang: LangQuery = None,
    accept_language: AcceptLanguage = None,
    format: Format = "json",
) -> Any:
    """The service desk: open and overdue tickets, SLA met, resolution time and
    satisfaction — by status, priority and agent."""
    report = service.tickets(_context(auth, session, lang, accept_language), _now(as_of))
    return _answer(
        report,
        format,
        _ticket_lines,
        ["breakdown", "key", "label", *_flat(service.Figures)],
    )


@router.get("/lead-conversion", response_model=leads.LeadConversionReport, responses=_responses())
def lead_conversion(
    auth: ManagerAuth,
    session: SessionDep,
    start: OptStart = None,
    end: OptEnd = None,
    lang: LangQuery = None,
    accept_language: AcceptLanguage = None,
    format: Format = "json",
) -> Any:
    """Leads per source (and per rep, per status): how many, converted, the rate and
    the days it took."""
    ctx = _context(auth, session, lang, accept_language)
    report = leads.lead_conversion(ctx, start, end)
    return _answer(
        report,
        format,
        lambda r: [s.model_dump() for s in r.sources],
        _flat(leads.LeadSource),
    )


@router.get(
    "/contracts-expiring",
    response_model=followups.ExpiringContractsReport,
    responses=_responses(),
)
def contracts_expiring(
    auth: ManagerAuth,
    session: SessionDep,
    days: Annotated[int, Query(ge=0, le=3650)] = 30,
    today: Annotated[IsoDate | None, Query(description="Default: today (UTC).")] = None,
    lang: LangQuery = None,
    accept_language: AcceptLanguage = None,
    format: Format = "json",
) -> Any:
    """Signed or active contracts ending within ``days`` days or within their own
    reminder window."""
    ctx = _context(auth, session, lang, accept_language)
    report = followups.expiring_contracts(ctx, today or datetime.now(UTC).date(), days)
    return _answer(
        report,
        format,
        lambda r: [c.model_dump() for c in r.contracts],
        _flat(followups.ExpiringContract),
    )


def _overdue_lines(report: followups.OverdueReport) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    for rep in report.reps:
        head = {"owner_id": rep.owner_id, "name": rep.name}
        for t in rep.tasks:
            lines.append(
                {**head, "kind": "task", "record_id": t.task_id, "title": t.title,
                 "due": t.due_at, "customer_id": t.customer_id}
            )  # fmt: skip
        for c in rep.customers:
            lines.append(
                {**head, "kind": "follow_up", "record_id": c.customer_id, "title": c.name,
                 "due": c.next_follow_up.isoformat(), "customer_id": c.customer_id}
            )  # fmt: skip
    return lines


@router.get("/overdue-follow-ups", response_model=followups.OverdueReport, responses=_responses())
def overdue_follow_ups(
    auth: ManagerAuth,
    session: SessionDep,
    as_of: Annotated[IsoDateTime | None, Query(description="Default: now (UTC).")] = None,
    format: Format = "json",
    per_rep: Annotated[
        int,
        Query(
            ge=1,
            le=10_000,
            description="JSON lists at most this many tasks and customers per rep (soonest "
            "first; the counts are always complete). The CSV lists every line.",
        ),
    ] = 100,
) -> Any:
    """Open tasks past due and customers past their next follow-up, by rep."""
    report = followups.overdue(
        ReportContext(session, auth.principal),
        _now(as_of),
        per_rep=None if format == "csv" else per_rep,
    )
    return _answer(
        report,
        format,
        _overdue_lines,
        ["owner_id", "name", "kind", "record_id", "title", "due", "customer_id"],
    )
