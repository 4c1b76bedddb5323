"""The manager reports, computed in Python over the decoded records of the caller's scope.

Correctness first: each report is a small pure function over lists of
:class:`~.records.StoredRow`, so it is tested against figures worked out by hand. The
definitions (also in ``docs/manager-api.md``):

* **funnel** — live opportunities grouped by ``stage_id`` in stage order: count, sum of
  ``amount``, and the probability-weighted amount Σ amount × p, where p is the
  opportunity's own ``probability`` or else its stage's (0 when neither is set).
* **rep performance** for ``[start, end]`` (dates, inclusive) — per rep: *target* = sum of
  the rep's ``sales_targets`` whose period lies inside the window; *won amount* = sum of
  ``amount`` of opportunities won (``status == "won"``) with ``closed_at`` in the window;
  *win rate* = won ÷ (won + lost) closed in the window; *average cycle time* = mean days
  from the opportunity's first stage change (else the record's creation on the server)
  to ``closed_at`` over the won ones; *activities* = activities with ``occurred_at`` in
  the window authored by the rep (``author_id``, else the owner of the customer).
* **lead conversion** — leads per ``source``: total, converted (``status ==
  "converted"`` or a ``converted_customer_id``), rate.
* **campaigns** — per campaign: members, conversions (member ``status == "converted"``),
  revenue (Σ member ``revenue``), cost (``cost``, else ``budget``), ROI = (revenue −
  cost) ÷ cost.
* **tickets** — per status: count, mean hours from ``opened_at`` to ``resolved_at`` (tickets
  having both), mean ``satisfaction`` (tickets having one).
* **contracts expiring** — ``signed``/``active`` contracts whose ``ends_on`` is within
  ``[today, today + days]``.
* **overdue follow-ups** — per owner: open tasks whose ``due_at`` is before ``as_of``, and
  customers whose ``next_follow_up`` date is before ``as_of``'s date.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .records import StoredRow

Rows = Mapping[str, Sequence[StoredRow]]


def parse_datetime(value: Any) -> datetime | None:
    if not isinstance(value, str) or "T" not in value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_date(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return float(value)


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


# ---- funnel --------------------------------------------------------------------------


class FunnelStage(BaseModel):
    stage_id: str
    name: str
    position: int
    count: int
    amount: float
    weighted_amount: float


class FunnelReport(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "stages": [
                        {
                            "stage_id": "s2",
                            "name": "Proposal",
                            "position": 2,
                            "count": 2,
                            "amount": 5000,
                            "weighted_amount": 3100,
                        }
                    ],
                    "total_count": 2,
                    "total_amount": 5000,
                    "total_weighted_amount": 3100,
                }
            ]
        }
    )

    stages: list[FunnelStage]
    total_count: int
    total_amount: float
    total_weighted_amount: float


def funnel(rows: Rows) -> FunnelReport:
    stages = {s.id: s.fields for s in rows.get("pipeline_stages", ())}
    by_stage: dict[str, list[StoredRow]] = defaultdict(list)
    for opp in rows.get("opportunities", ()):
        by_stage[str(opp.fields.get("stage_id"))].append(opp)
    out: list[FunnelStage] = []
    for stage_id in sorted(
        set(stages) | set(by_stage),
        key=lambda s: (int(stages.get(s, {}).get("position", 10**6)), s),
    ):
        stage = stages.get(stage_id, {})
        opps = by_stage.get(stage_id, [])
        amount = weighted = 0.0
        for opp in opps:
            value = _number(opp.fields.get("amount"))
            p = opp.fields.get("probability")
            if p is None:
                p = stage.get("probability")
            amount += value
            weighted += value * _number(p)
        out.append(
            FunnelStage(
                stage_id=stage_id,
                name=str(stage.get("name", stage_id)),
                position=int(stage.get("position", 10**6)),
                count=len(opps),
                amount=amount,
                weighted_amount=weighted,
            )
        )
    return FunnelReport(
        stages=out,
        total_count=sum(s.count for s in out),
        total_amount=sum(s.amount for s in out),
        total_weighted_amount=sum(s.weighted_amount for s in out),
    )


# ---- rep performance -----------------------------------------------------------------


class RepPerformance(BaseModel):
    rep_id: str
    name: str
    target: float
    won_amount: float
    attainment: float | None = Field(description="won_amount ÷ target; null without a target")
    won_count: int
    lost_count: int
    win_rate: float | None
    avg_cycle_days: float | None
    activities: int


class PerformanceReport(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "start": "2026-10-01",
                    "end": "2026-10-31",
                    "reps": [
                        {
                            "rep_id": "u-rep1",
                            "name": "王芳",
                            "target": 10000,
                            "won_amount": 5000,
                            "attainment": 0.5,
                            "won_count": 1,
                            "lost_count": 1,
                            "win_rate": 0.5,
                            "avg_cycle_days": 10.0,
                            "activities": 2,
                        }
                    ],
                }
            ]
        }
    )

    start: date
    end: date
    reps: list[RepPerformance]


def rep_performance(
    rows: Rows, reps: Mapping[str, str], start: date, end: date
) -> PerformanceReport:
    """``reps`` maps rep id → display name (the reps in the caller's scope)."""

    def within(d: date | None) -> bool:
        return d is not None and start <= d <= end

    first_stage: dict[str, datetime] = {}
    for change in rows.get("stage_changes", ()):
        at = parse_datetime(change.fields.get("changed_at"))
        opp_id = change.fields.get("opportunity_id")
        if not isinstance(opp_id, str) or at is None:
            continue
        if opp_id not in first_stage or at < first_stage[opp_id]:
            first_stage[opp_id] = at
    target: dict[str, float] = defaultdict(float)
    for t in rows.get("sales_targets", ()):
        ps, pe = parse_date(t.fields.get("period_start")), parse_date(t.fields.get("period_end"))
        if ps is not None and pe is not None and start <= ps and pe <= end:
            target[str(t.fields.get("owner_id") or t.owner_id)] += _number(t.fields.get("amount"))
    won: dict[str, list[StoredRow]] = defaultdict(list)
    lost: dict[str, int] = defaultdict(int)
    cycles: dict[str, list[float]] = defaultdict(list)
    for opp in rows.get("opportunities", ()):
        closed = parse_datetime(opp.fields.get("closed_at"))
        if closed is None or not within(closed.date()) or opp.owner_id is None:
            continue
        status = opp.fields.get("status")
        if status == "won":
            won[opp.owner_id].append(opp)
            began = first_stage.get(opp.id)
            if began is None and opp.created_at_ms is not None:
                began = datetime.fromtimestamp(opp.created_at_ms / 1000, UTC)
            if began is not None:
                cycles[opp.owner_id].append((closed - began).total_seconds() / 86400)
        elif status == "lost":
            lost[opp.owner_id] += 1
    activities: dict[str, int] = defaultdict(int)
    for act in rows.get("activities", ()):
        when = parse_datetime(act.fields.get("occurred_at"))
        author = act.fields.get("author_id") or act.owner_id
        if when is not None and within(when.date()) and isinstance(author, str):
            activities[author] += 1
    out = []
    for rep_id, name in sorted(reps.items()):
        won_amount = sum(_number(o.fields.get("amount")) for o in won[rep_id])
        closed_count = len(won[rep_id]) + lost[rep_id]
        goal = target.get(rep_id, 0.0)
        out.append(
            RepPerformance(
                rep_id=rep_id,
                name=name,
                target=goal,
                won_amount=won_amount,
                attainment=won_amount / goal if goal else None,
                won_count=len(won[rep_id]),
                lost_count=lost[rep_id],
                win_rate=len(won[rep_id]) / closed_count if closed_count else None,
                avg_cycle_days=_mean(cycles[rep_id]),
                activities=activities[rep_id],
            )
        )
    return PerformanceReport(start=start, end=end, reps=out)


# ---- leads ---------------------------------------------------------------------------


class LeadSource(BaseModel):
    source: str
    leads: int
    converted: int
    conversion_rate: float


class LeadConversionReport(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "sources": [
                        {"source": "web", "leads": 3, "converted": 2, "conversion_rate": 0.6667}
                    ],
                    "total_leads": 3,
                    "total_converted": 2,
                }
            ]
        }
    )

    sources: list[LeadSource]
    total_leads: int
    total_converted: int


def lead_conversion(rows: Rows) -> LeadConversionReport:
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for lead in rows.get("leads", ()):
        source = str(lead.fields.get("source") or "unknown")
        counts[source][0] += 1
        if lead.fields.get("status") == "converted" or lead.fields.get("converted_customer_id"):
            counts[source][1] += 1
    sources = [
        LeadSource(source=s, leads=n, converted=c, conversion_rate=c / n)
        for s, (n, c) in sorted(counts.items())
    ]
    return LeadConversionReport(
        sources=sources,
        total_leads=sum(s.leads for s in sources),
        total_converted=sum(s.converted for s in sources),
    )


# ---- campaigns -----------------------------------------------------------------------


class CampaignResult(BaseModel):
    campaign_id: str
    name: str
    members: int
    conversions: int
    conversion_rate: float | None
    revenue: float
    cost: float
    roi: float | None = Field(description="(revenue − cost) ÷ cost; null when cost is 0")


class CampaignReport(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "campaigns": [
                        {
                            "campaign_id": "k1",
                            "name": "Expo",
                            "members": 3,
                            "conversions": 2,
                            "conversion_rate": 0.6667,
                            "revenue": 4000,
                            "cost": 2000,
                            "roi": 1.0,
                        }
                    ]
                }
            ]
        }
    )

    campaigns: list[CampaignResult]


def campaigns(rows: Rows) -> CampaignReport:
    members: dict[str, list[StoredRow]] = defaultdict(list)
    for m in rows.get("campaign_members", ()):
        members[str(m.fields.get("campaign_id"))].append(m)
    out = []
    for c in sorted(rows.get("campaigns", ()), key=lambda r: (str(r.fields.get("name")), r.id)):
        ms = members.get(c.id, [])
        conversions = sum(1 for m in ms if m.fields.get("status") == "converted")
        revenue = sum(_number(m.fields.get("revenue")) for m in ms)
        cost_value = c.fields.get("cost")
        cost = _number(cost_value if cost_value is not None else c.fields.get("budget"))
        out.append(
            CampaignResult(
                campaign_id=c.id,
                name=str(c.fields.get("name", c.id)),
                members=len(ms),
                conversions=conversions,
                conversion_rate=conversions / len(ms) if ms else None,
                revenue=revenue,
                cost=cost,
                roi=(revenue - cost) / cost if cost else None,
            )
        )
    return CampaignReport(campaigns=out)


# ---- tickets -------------------------------------------------------------------------


class TicketStatus(BaseModel):
    status: str
    count: int
    avg_resolution_hours: float | None
    avg_satisfaction: float | None


class TicketReport(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "statuses": [
                        {
                            "status": "resolved",
                            "count": 2,
                            "avg_resolution_hours": 24.0,
                            "avg_satisfaction": 4.5,
                        }
                    ],
                    "total": 2,
                    "avg_resolution_hours": 24.0,
                    "avg_satisfaction": 4.5,
                }
            ]
        }
    )

    statuses: list[TicketStatus]
    total: int
    avg_resolution_hours: float | None
    avg_satisfaction: float | None


def _ticket_figures(tickets: Iterable[StoredRow]) -> tuple[int, float | None, float | None]:
    hours: list[float] = []
    scores: list[float] = []
    count = 0
    for t in tickets:
        count += 1
        opened = parse_datetime(t.fields.get("opened_at"))
        resolved = parse_datetime(t.fields.get("resolved_at"))
        if opened is not None and resolved is not None:
            hours.append((resolved - opened).total_seconds() / 3600)
        score = t.fields.get("satisfaction")
        if isinstance(score, int) and not isinstance(score, bool):
            scores.append(float(score))
    return count, _mean(hours), _mean(scores)


def tickets(rows: Rows) -> TicketReport:
    order = ("open", "in_progress", "resolved", "closed")
    by_status: dict[str, list[StoredRow]] = defaultdict(list)
    for t in rows.get("tickets", ()):
        by_status[str(t.fields.get("status"))].append(t)
    statuses = []
    for status in sorted(by_status, key=lambda s: (order.index(s) if s in order else 99, s)):
        count, hours, score = _ticket_figures(by_status[status])
        statuses.append(
            TicketStatus(
                status=status, count=count, avg_resolution_hours=hours, avg_satisfaction=score
            )
        )
    total, hours, score = _ticket_figures(rows.get("tickets", ()))
    return TicketReport(
        statuses=statuses, total=total, avg_resolution_hours=hours, avg_satisfaction=score
    )


# ---- contracts -----------------------------------------------------------------------


class ExpiringContract(BaseModel):
    contract_id: str
    number: str
    title: str | None
    customer_id: str | None
    customer_name: str | None
    owner_id: str | None
    amount: float | None
    ends_on: date
    days_left: int


class ExpiringContractsReport(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "today": "2026-11-23",
                    "days": 30,
                    "contracts": [
                        {
                            "contract_id": "k-a",
                            "number": "HT-001",
                            "title": None,
                            "customer_id": "c1",
                            "customer_name": "客户一",
                            "owner_id": "u-rep1",
                            "amount": 50000,
                            "ends_on": "2026-12-01",
                            "days_left": 8,
                        }
                    ],
                }
            ]
        }
    )

    today: date
    days: int
    contracts: list[ExpiringContract]


def expiring_contracts(rows: Rows, today: date, days: int) -> ExpiringContractsReport:
    names = {c.id: c.fields.get("name") for c in rows.get("customers", ())}
    horizon = today + timedelta(days=days)
    out = []
    for c in rows.get("contracts", ()):
        ends = parse_date(c.fields.get("ends_on"))
        if ends is None or c.fields.get("status") not in ("signed", "active"):
            continue
        if not today <= ends <= horizon:
            continue
        amount = c.fields.get("amount")
        out.append(
            ExpiringContract(
                contract_id=c.id,
                number=str(c.fields.get("number", "")),
                title=c.fields.get("title"),
                customer_id=c.customer_id,
                customer_name=names.get(c.customer_id or ""),
                owner_id=c.owner_id,
                amount=_number(amount) if amount is not None else None,
                ends_on=ends,
                days_left=(ends - today).days,
            )
        )
    out.sort(key=lambda c: (c.ends_on, c.number))
    return ExpiringContractsReport(today=today, days=days, contracts=out)


# ---- overdue follow-ups --------------------------------------------------------------


class OverdueTask(BaseModel):
    task_id: str
    title: str
    due_at: str
    customer_id: str | None


class OverdueCustomer(BaseModel):
    customer_id: str
    name: str
    next_follow_up: date


class OverdueByRep(BaseModel):
    owner_id: str
    name: str
    overdue_tasks: int
    overdue_follow_ups: int
    tasks: list[OverdueTask]
    customers: list[OverdueCustomer]


class OverdueReport(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "as_of": "2026-11-23T12:00:00Z",
                    "reps": [
                        {
                            "owner_id": "u-rep1",
                            "name": "王芳",
                            "overdue_tasks": 1,
                            "overdue_follow_ups": 1,
                            "tasks": [
                                {
                                    "task_id": "ta1",
                                    "title": "回访",
                                    "due_at": "2026-11-20T09:00:00+00:00",
                                    "customer_id": "c1",
                                }
                            ],
                            "customers": [
                                {
                                    "customer_id": "c1",
                                    "name": "客户一",
                                    "next_follow_up": "2026-11-10",
                                }
                            ],
                        }
                    ],
                }
            ]
        }
    )

    as_of: datetime
    reps: list[OverdueByRep]


def overdue(rows: Rows, names: Mapping[str, str], as_of: datetime) -> OverdueReport:
    tasks: dict[str, list[OverdueTask]] = defaultdict(list)
    for t in rows.get("tasks", ()):
        due = parse_datetime(t.fields.get("due_at"))
        if t.fields.get("status") == "open" and due is not None and due < as_of and t.owner_id:
            tasks[t.owner_id].append(
                OverdueTask(
                    task_id=t.id,
                    title=str(t.fields.get("title", "")),
                    due_at=str(t.fields.get("due_at")),
                    customer_id=t.customer_id,
                )
            )
    customers: dict[str, list[OverdueCustomer]] = defaultdict(list)
    for c in rows.get("customers", ()):
        follow = parse_date(c.fields.get("next_follow_up"))
        if follow is not None and follow < as_of.date() and c.owner_id:
            customers[c.owner_id].append(
                OverdueCustomer(
                    customer_id=c.id, name=str(c.fields.get("name", "")), next_follow_up=follow
                )
            )
    out = []
    for owner in sorted(set(tasks) | set(customers)):
        ts = sorted(tasks.get(owner, []), key=lambda t: (t.due_at, t.task_id))
        cs = sorted(customers.get(owner, []), key=lambda c: (c.next_follow_up, c.customer_id))
        out.append(
            OverdueByRep(
                owner_id=owner,
                name=names.get(owner, owner),
                overdue_tasks=len(ts),
                overdue_follow_ups=len(cs),
                tasks=ts,
                customers=cs,
            )
        )
    return OverdueReport(as_of=as_of, reps=out)
