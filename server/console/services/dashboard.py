"""The dashboard's figures: the team's pipeline, targets, week, backlog and trouble.

Every figure comes from the manager API's reports (:mod:`server.manager.reports`) or its
scope-filtered reads, computed for the caller's team (everything for an admin):

* funnel — :func:`reports.funnel` over the *open* deals;
* won vs target — :func:`reports.rep_performance` for the current calendar month;
* visits and calls per rep — activities of type ``visit``/``call`` whose ``occurred_at``
  falls in the current ISO week (Monday 00:00 UTC on), by author (else owner);
* overdue follow-ups — :func:`reports.overdue` now;
* open tickets and satisfaction — :func:`reports.tickets`;
* waiting — open conflicts, rejected writes waiting on the team's phones (their dead
  letters, from fleet health), devices out of sync (:func:`is_out_of_sync`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from ...context import ServerContext
from ...manager import devices as devices_api
from ...manager import reports
from ...manager.devices import DeviceOut
from ...manager.records import CONFLICTS, StoredRow, load_rows
from ...manager.report_routes import scope_rows, scope_users
from ..session import ConsoleUser

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


def _funnel(rows: dict[str, list[StoredRow]]) -> list[dict[str, Any]]:
    """The live funnel: open deals in the open stages, with each stage's Chinese name."""
    stages = [
        s
        for s in rows.get("pipeline_stages", [])
        if not (s.fields.get("is_won") or s.fields.get("is_lost"))
    ]
    open_stages = {s.id for s in stages}
    live = [
        o
        for o in rows.get("opportunities", [])
        if o.fields.get("status") == "open" and o.fields.get("stage_id") in open_stages
    ]
    report = reports.funnel({"pipeline_stages": stages, "opportunities": live})
    names_zh = {s.id: s.fields.get("name_zh") for s in stages}
    return [
        {**st.model_dump(), "name_zh": names_zh.get(st.stage_id) or st.name} for st in report.stages
    ]


def week_activity(
    activities: list[StoredRow], names: dict[str, str], since: datetime
) -> list[dict[str, Any]]:
    counts: dict[str, dict[str, int]] = {uid: {"visit": 0, "call": 0} for uid in names}
    for act in activities:
        kind = act.fields.get("type")
        if kind not in ("visit", "call"):
            continue
        when = reports.parse_datetime(act.fields.get("occurred_at"))
        author = act.fields.get("author_id") or act.owner_id
        if when is None or when < since or when > since + timedelta(days=7):
            continue
        if isinstance(author, str) and author in counts:
            counts[author][str(kind)] += 1
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


def build(
    session: Session, context: ServerContext, me: ConsoleUser, now: datetime | None = None
) -> Dashboard:
    now = now or datetime.now(UTC)
    start, end = month_bounds(now.date())
    rows = scope_rows(
        session,
        me.auth,
        "pipeline_stages",
        "opportunities",
        "stage_changes",
        "sales_targets",
        "activities",
        "tasks",
        "customers",
        "tickets",
    )
    reps = scope_users(session, me.auth, reps_only=True)
    everyone = scope_users(session, me.auth, reps_only=False)
    funnel = _funnel(rows)
    perf_rows = {k: rows[k] for k in ("opportunities", "stage_changes", "sales_targets")}
    performance = reports.rep_performance(perf_rows, reps, start, end)
    overdue = reports.overdue(rows, everyone, now)
    tickets = reports.tickets(rows)
    conflicts = load_rows(session.connection(), me.principal, CONFLICTS)
    late, rejected = _devices(session, context, me, now)
    dashboard = Dashboard(
        period=f"{start:%Y-%m}",
        funnel=funnel,
        pipeline_value=sum(s["amount"] for s in funnel),
        deals=sum(s["count"] for s in funnel),
        reps=[
            {"rep_id": r.rep_id, "name": r.name, "won": r.won_amount, "target": r.target}
            for r in performance.reps
        ],
        week=week_activity(rows["activities"], reps, week_start(now)),
        overdue=[
            {"name": r.name, "tasks": r.overdue_tasks, "customers": r.overdue_follow_ups}
            for r in overdue.reps
        ],
        overdue_tasks=sum(r.overdue_tasks for r in overdue.reps),
        overdue_customers=sum(r.overdue_follow_ups for r in overdue.reps),
        open_tickets=sum(s.count for s in tickets.statuses if s.status in OPEN_TICKET_STATUSES),
        satisfaction=tickets.avg_satisfaction,
        tickets_by_status=[{"status": s.status, "count": s.count} for s in tickets.statuses],
        open_conflicts=sum(1 for c in conflicts if c.fields.get("status") == "open"),
        rejected_writes=rejected,
        out_of_sync=late,
    )
    session.rollback()
    return dashboard
