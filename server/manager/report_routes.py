"""``/v1/manager/reports/…``: the reports of :mod:`.reports` as JSON, or CSV with
``?format=csv`` (one flat row per line item, for spreadsheets)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..deps import AuthContext, SessionDep
from ..models import User
from . import reports
from .common import IsoDate, IsoDateTime, ManagerAuth, error_responses
from .records import StoredRow, load_rows, scope_owners

router = APIRouter(prefix="/v1/manager/reports", tags=["manager: reports"])

Format = Annotated[Literal["json", "csv"], Query(description="`csv` for a spreadsheet.")]
R = TypeVar("R", bound=BaseModel)


def _responses(model: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    responses = error_responses()
    responses[200] = {
        "description": "The report as JSON, or as CSV with `?format=csv`.",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
    return responses


def csv_text(rows: Iterable[Mapping[str, Any]], columns: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buffer.getvalue()


def _answer(
    report: R, fmt: str, flatten: Callable[[R], list[dict[str, Any]]], columns: list[str]
) -> R | Response:
    if fmt == "csv":
        return Response(csv_text(flatten(report), columns), media_type="text/csv; charset=utf-8")
    return report


def scope_rows(
    session: Session, auth: AuthContext, *collections: str
) -> dict[str, list[StoredRow]]:
    conn = session.connection()
    rows = {c: load_rows(conn, auth.principal, c) for c in collections}
    session.rollback()
    return rows


def scope_users(session: Session, auth: AuthContext, *, reps_only: bool) -> dict[str, str]:
    """User id → display name for the users in the caller's scope."""
    stmt = select(User.id, User.display_name, User.role)
    owners = scope_owners(auth.principal)
    if owners is not None:
        stmt = stmt.where(User.id.in_(owners))
    return {
        uid: name for uid, name, role in session.execute(stmt) if not reps_only or role == "rep"
    }


@router.get(
    "/funnel", response_model=reports.FunnelReport, responses=_responses(reports.FunnelReport)
)
def funnel(auth: ManagerAuth, session: SessionDep, format: Format = "json") -> Any:
    """Open and closed opportunities by pipeline stage: count, amount, weighted amount."""
    report = reports.funnel(scope_rows(session, auth, "pipeline_stages", "opportunities"))
    return _answer(
        report,
        format,
        lambda r: [s.model_dump() for s in r.stages],
        ["stage_id", "name", "position", "count", "amount", "weighted_amount"],
    )


@router.get(
    "/rep-performance",
    response_model=reports.PerformanceReport,
    responses=_responses(reports.PerformanceReport),
)
def rep_performance(
    auth: ManagerAuth,
    session: SessionDep,
    start: Annotated[IsoDate, Query(description="First day of the period.")],
    end: Annotated[IsoDate, Query(description="Last day of the period (inclusive).")],
    format: Format = "json",
) -> Any:
    """Each rep against their sales targets: won amount, win rate, cycle time, activities."""
    rows = scope_rows(
        session, auth, "opportunities", "stage_changes", "activities", "sales_targets"
    )
    report = reports.rep_performance(rows, scope_users(session, auth, reps_only=True), start, end)
    return _answer(
        report,
        format,
        lambda r: [x.model_dump() for x in r.reps],
        list(reports.RepPerformance.model_fields),
    )


@router.get(
    "/lead-conversion",
    response_model=reports.LeadConversionReport,
    responses=_responses(reports.LeadConversionReport),
)
def lead_conversion(auth: ManagerAuth, session: SessionDep, format: Format = "json") -> Any:
    """Leads per source: how many, how many converted, the conversion rate."""
    report = reports.lead_conversion(scope_rows(session, auth, "leads"))
    return _answer(
        report,
        format,
        lambda r: [s.model_dump() for s in r.sources],
        list(reports.LeadSource.model_fields),
    )


@router.get(
    "/campaigns",
    response_model=reports.CampaignReport,
    responses=_responses(reports.CampaignReport),
)
def campaigns(auth: ManagerAuth, session: SessionDep, format: Format = "json") -> Any:
    """Campaign members, conversions, revenue and ROI."""
    report = reports.campaigns(scope_rows(session, auth, "campaigns", "campaign_members"))
    return _answer(
        report,
        format,
        lambda r: [c.model_dump() for c in r.campaigns],
        list(reports.CampaignResult.model_fields),
    )


@router.get(
    "/tickets", response_model=reports.TicketReport, responses=_responses(reports.TicketReport)
)
def tickets(auth: ManagerAuth, session: SessionDep, format: Format = "json") -> Any:
    """Tickets by status with average resolution time and satisfaction."""
    report = reports.tickets(scope_rows(session, auth, "tickets"))
    return _answer(
        report,
        format,
        lambda r: [s.model_dump() for s in r.statuses],
        list(reports.TicketStatus.model_fields),
    )


@router.get(
    "/contracts-expiring",
    response_model=reports.ExpiringContractsReport,
    responses=_responses(reports.ExpiringContractsReport),
)
def contracts_expiring(
    auth: ManagerAuth,
    session: SessionDep,
    days: Annotated[int, Query(ge=0, le=3650)] = 30,
    today: Annotated[IsoDate | None, Query(description="Default: today (UTC).")] = None,
    format: Format = "json",
) -> Any:
    """Signed or active contracts ending within ``days`` days."""
    rows = scope_rows(session, auth, "contracts", "customers")
    report = reports.expiring_contracts(rows, today or datetime.now(UTC).date(), days)
    return _answer(
        report,
        format,
        lambda r: [c.model_dump() for c in r.contracts],
        list(reports.ExpiringContract.model_fields),
    )


def _overdue_lines(report: reports.OverdueReport) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    for rep in report.reps:
        for t in rep.tasks:
            lines.append(
                {
                    "owner_id": rep.owner_id,
                    "name": rep.name,
                    "kind": "task",
                    "record_id": t.task_id,
                    "title": t.title,
                    "due": t.due_at,
                    "customer_id": t.customer_id,
                }
            )
        for c in rep.customers:
            lines.append(
                {
                    "owner_id": rep.owner_id,
                    "name": rep.name,
                    "kind": "follow_up",
                    "record_id": c.customer_id,
                    "title": c.name,
                    "due": c.next_follow_up.isoformat(),
                    "customer_id": c.customer_id,
                }
            )
    return lines


@router.get(
    "/overdue-follow-ups",
    response_model=reports.OverdueReport,
    responses=_responses(reports.OverdueReport),
)
def overdue_follow_ups(
    auth: ManagerAuth,
    session: SessionDep,
    as_of: Annotated[IsoDateTime | None, Query(description="Default: now (UTC).")] = None,
    format: Format = "json",
) -> Any:
    """Open tasks past due and customers past their next follow-up, by rep."""
    moment = as_of or datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    rows = scope_rows(session, auth, "tasks", "customers")
    report = reports.overdue(rows, scope_users(session, auth, reps_only=False), moment)
    return _answer(
        report,
        format,
        _overdue_lines,
        ["owner_id", "name", "kind", "record_id", "title", "due", "customer_id"],
    )
