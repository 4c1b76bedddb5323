"""The dashboard's figures: the team's pipeline, targets, week, backlog and trouble.

Every figure comes from the manager API's reports (:mod:`server.reports`, computed in
SQL) or its scope-filtered reads, for the caller's team (everything for an admin):

* funnel — :func:`~server.reports.funnel.funnel` (live deals);
* won vs target — :func:`~server.reports.performance.rep_performance` for the current
  calendar month;
* visits and calls per rep — activities of type ``visit``/``call`` whose ``occurred_at``
  falls in the current ISO week (Monday 00:00 UTC on), by author (else owner);
* overdue follow-ups — :func:`~server.reports.followups.overdue_counts` now (the
  report's definition, counted);
* open tickets and satisfaction — :func:`~server.reports.service.tickets`;
* waiting — open conflicts, rejected writes waiting on the team's phones (their dead
  letters, from fleet health), devices out of sync (:func:`is_out_of_sync`).

The reports are independent, so they run side by side on their own connections
(:data:`FAN_OUT` at a time): the page takes about as long as its slowest report. Measured
on 200,000 activities under load (2 cores, load 7-11), the median fell from 632 ms
(one after another) to 410 ms (three at a time) and ~300 ms (all five). The week's and
month's activity counts and the overdue follow-up count read partial indexes on the
reporting table (migration ``0010_console_indexes``): page p95 575 -> 327 ms at load 9-10,
184 -> 112 ms at load 2.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ...accounts import Principal
from ...context import ServerContext
from ...manager import devices as devices_api
from ...manager.devices import DeviceOut
from ...manager.records import CONFLICTS, load_rows
from ...reports import followups, funnel, performance, service, sql
from ...reports.base import ReportContext, scope_users
from ..session import ConsoleUser

T = TypeVar("T")
OUT_OF_SYNC_AFTER = timedelta(hours=24)
STALE_AFTER_S = 3600
OPEN_TICKET_STATUSES = ("open", "in_progress")


@dataclass(slots=True)
class Dashboard:
    period: str
    funnel: list[dict[str, Any]]
    pipeline_value: float
    deals: int
    reps: list[dict[str, Any]]
    week: list[dict[str, Any]]
    overdue: list[dict[str, Any]]
    overdue_tasks: int
    overdue_customers: int
    open_tickets: int
    satisfaction: float | None
    tickets_by_status: list[dict[str, Any]]
    open_conflicts: int
    rejected_writes: int
    out_of_sync: list[dict[str, Any]] = field(default_factory=list)


def month_bounds(today: date) -> tuple[date, date]:
    start = today.replace(day=1)
    following = (start + timedelta(days=32)).replace(day=1)
    return start, following - timedelta(days=1)


def week_start(now: datetime) -> datetime:
    monday = (now - timedelta(days=now.weekday())).date()
    return datetime(monday.year, monday.month, monday.day, tzinfo=UTC)


def _funnel(ctx: ReportContext) -> list[dict[str, Any]]:
    """The live funnel (open deals in the open stages), with each stage's Chinese name."""
    names_zh = {s.id: s.name_zh for s in funnel.stages(ctx)}
    return [
        {**st.model_dump(), "name_zh": names_zh.get(st.stage_id) or st.name}
        for st in funnel.funnel(ctx).stages
    ]


def week_activity(ctx: ReportContext, names: dict[str, str], since: date) -> list[dict[str, Any]]:
    """Visits and calls per rep from ``since`` (a Monday) for seven days, by the
    activity's author (else the owner of its customer), from the reporting table."""
    acts = ctx.view(
        "activities", {"author_id": sql.TEXT, "occurred_at": sql.DAY, "type": sql.TEXT}, "acts"
    )
    who = func.coalesce(acts.c.author_id, acts.c.owner_id)
    stmt = (
        select(who, acts.c.type, func.count())
        .where(
            acts.c.type.in_(("visit", "call")),
            acts.c.occurred_at >= since.isoformat(),
            acts.c.occurred_at < (since + timedelta(days=7)).isoformat(),
        )
        .group_by(who, acts.c.type)
    )
    counts: dict[str, dict[str, int]] = {uid: {"visit": 0, "call": 0} for uid in names}
    for author, kind, n in ctx.rows(stmt):
        if author in counts:
            counts[author][str(kind)] += int(n)
    return [
        {"rep_id": uid, "name": names[uid], "visits": c["visit"], "calls": c["call"]}
        for uid, c in sorted(counts.items(), key=lambda kv: names[kv[0]])
    ]


def is_out_of_sync(device: DeviceOut, now: datetime) -> bool:
    """Behind by changes older than an hour, writes unsent for an hour, a current error,
    a resync ahead — or no sync at all for a day."""
    health = device.health
    if health is None:
        return True
    lag = health.lag
    if lag is not None and (lag.resync_required or (lag.seconds or 0) > STALE_AFTER_S):
        return True
    if (health.oldest_pending_age_s or 0) > STALE_AFTER_S or health.last_error is not None:
        return True
    synced = [t for t in (health.last_push_at, health.last_pull_at) if t is not None]
    return not synced or now - max(synced) > OUT_OF_SYNC_AFTER


def _devices(
    session: Session, context: ServerContext, me: ConsoleUser, now: datetime
) -> tuple[list[dict[str, Any]], int]:
    """(devices out of sync, rejected writes waiting on the team's phones)."""
    listing = devices_api.list_devices(
        me.auth, session, context, user_id=None, include_revoked=False, offset=0, limit=1000
    )
    phones = [d for d in listing.items if d.platform != "web"]
    rejected = sum((d.health.dead_letters or 0) for d in phones if d.health is not None)
    late = [
        {
            "id": d.id,
            "name": d.name or d.id,
            "user_id": d.user_id,
            "last_seen": max(
                [t for t in (d.health.last_push_at, d.health.last_pull_at) if t is not None]
                or [d.last_seen or d.created_at]
            )
            if d.health
            else d.last_seen,
            "pending": (d.health.pending_writes if d.health else d.pending_writes) or 0,
        }
        for d in phones
        if is_out_of_sync(d, now)
    ]
    late.sort(key=lambda d: (d["last_seen"] is not None, d["last_seen"] or now))
    return late, rejected


#: The dashboard's independent reports run side by side, each on its own connection.
FAN_OUT = 5  # one per report: five connections for a moment (the pool holds 30)


def _report(context: ServerContext, principal: Principal, job: Callable[[ReportContext], T]) -> T:
    with context.sessions() as session:
        try:
            return job(ReportContext(session, principal))
        finally:
            session.rollback()


def _side_by_side(
    context: ServerContext, principal: Principal, jobs: dict[str, Callable[[ReportContext], Any]]
) -> dict[str, Any]:
    """Run ``jobs`` concurrently (each reads one consistent snapshot of its own; the
    dashboard's figures are independent of one another), so the page takes about as long
    as its slowest report rather than their sum."""
    with ThreadPoolExecutor(max_workers=FAN_OUT, thread_name_prefix="dashboard") as pool:
        futures = {
            name: pool.submit(_report, context, principal, job) for name, job in jobs.items()
        }
        return {name: future.result() for name, future in futures.items()}


def build(
    session: Session, context: ServerContext, me: ConsoleUser, now: datetime | None = None
) -> Dashboard:
    now = now or datetime.now(UTC)
    start, end = month_bounds(now.date())
    reps = scope_users(session, me.auth, reps_only=True)
    sql.prepare(session)  # the reporting table caught up once, before the fan-out
    since = week_start(now).date()
    done = _side_by_side(
        context,
        me.principal,
        {
            "week": lambda ctx: week_activity(ctx, reps, since),
            "won": lambda ctx: performance.rep_performance(ctx, start, end),
            "overdue": lambda ctx: followups.overdue_counts(ctx, now),
            "stages": _funnel,
            "tickets": lambda ctx: service.tickets(ctx, now),
        },
    )
    stages, won, overdue, tickets = done["stages"], done["won"], done["overdue"], done["tickets"]
    everyone = scope_users(session, me.auth, reps_only=False)
    conflicts = load_rows(session.connection(), me.principal, CONFLICTS)
    late, rejected = _devices(session, context, me, now)
    dashboard = Dashboard(
        period=f"{start:%Y-%m}",
        funnel=stages,
        pipeline_value=sum(s["amount"] for s in stages),
        deals=sum(s["count"] for s in stages),
        reps=[
            {"rep_id": r.rep_id, "name": r.name, "won": r.won_amount, "target": r.target}
            for r in won.reps
        ],
        week=done["week"],
        overdue=[
            {"name": everyone.get(owner, owner), "tasks": n_tasks, "customers": n_customers}
            for owner, (n_tasks, n_customers) in sorted(overdue.items())
        ],
        overdue_tasks=sum(n for n, _ in overdue.values()),
        overdue_customers=sum(n for _, n in overdue.values()),
        open_tickets=sum(s.count for s in tickets.statuses if s.status in OPEN_TICKET_STATUSES),
        satisfaction=tickets.avg_satisfaction,
        tickets_by_status=[{"status": s.status, "count": s.count} for s in tickets.statuses],
        open_conflicts=sum(1 for c in conflicts if c.fields.get("status") == "open"),
        rejected_writes=rejected,
        out_of_sync=late,
    )
    session.rollback()
    return dashboard
