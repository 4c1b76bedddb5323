"""One small, fixed CRM data set, written through the manager API, on SQLite and on
PostgreSQL (module-scoped: built once per database), for the report tests.

Team A: ``rep_a1`` and ``rep_a2`` under ``mgr_a``; team B: ``rep_b1`` under ``mgr_b``.
Every team-B record carries ``B`` in its id (``cb``, ``ob``, ``tkb``, …), so a scope
test can say "nothing of team B" by looking for those ids. Figures in the tests are
worked out by hand from the comments here.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sync_protocol import CRM_SCHEMA
from tests.conftest import scratch_database
from tests.server.conftest import World, build_world
from tests.server.manager.conftest import Web

#: Ids of team B's records (none may reach team A's figures, and vice versa).
TEAM_B_IDS = ("cb", "ob", "tkb", "k-b1", "tab", "mb", "qb", "qlb", "srb", "lb")


def make(web: Web, collection: str, rid: str, owner: str | None = None, **fields: Any) -> None:
    known = CRM_SCHEMA[collection].fields
    fields = {k: v for k, v in fields.items() if k in known}  # TEMP until crm's v2 fields
    body: dict[str, Any] = {"id": rid, "fields": fields}
    if owner is not None:
        body["owner_id"] = owner
    response = web.post(f"/v1/manager/records/{collection}", json=body)
    assert response.status_code == 201, response.text


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def report_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    with scratch_database(request.param, tmp_path_factory.mktemp("reports"), "fs_test") as url:
        yield url


@pytest.fixture(scope="module")
def world(report_db: str) -> Iterator[World]:
    w, client = build_world(report_db)
    with client:
        yield w
    w.context.engine.dispose()


@pytest.fixture(scope="module")
def mgr(world: World) -> Web:
    return Web(world, "mgr_a")


@pytest.fixture(scope="module")
def mgr_b(world: World) -> Web:
    return Web(world, "mgr_b")


@pytest.fixture(scope="module")
def admin(world: World) -> Web:
    return Web(world, "admin")


def _reference(mgr: Web) -> None:
    """Products and campaigns first: the server refuses references to missing records."""
    for pid, name, sku in (("p1", "智能门锁", "LOCK-01"), ("p2", "Router", "NET-02")):
        make(mgr, "products", pid, name=name, sku=sku, category="hardware", price=100)
    make(mgr, "campaigns", "k1", name="Expo", channel="event", cost=2000, budget=5000)
    make(mgr, "campaigns", "k2", name="Mailing", channel="email", budget=1000)
    make(mgr, "campaigns", "k3", name="Idle")


def _pipeline(mgr: Web, admin: Web) -> None:
    for sid, name, zh, pos, p, flags in (
        ("s1", "Lead", "初步接触", 1, 0.1, {}),
        ("s2", "Proposal", "方案报价", 2, 0.5, {}),
        ("s3", "Won", "赢单", 3, 1.0, {"is_won": True}),
        ("s4", "Lost", "输单", 4, 0.0, {"is_lost": True}),
    ):
        make(
            mgr, "pipeline_stages", sid, name=name, name_zh=zh, position=pos, probability=p, **flags
        )

    def opp(rid: str, cust: str, stage: str, amount: float, status: str, **kw: Any) -> None:
        web = admin if cust == "cb" else mgr
        make(web, "opportunities", rid, customer_id=cust, name=rid, stage_id=stage,
             amount=amount, status=status, **kw)  # fmt: skip

    opp("o1", "c1", "s1", 1000, "open")
    opp("o2", "c1", "s2", 2000, "open", probability=0.8)
    opp("o3", "c2", "s2", 3000, "open")
    opp("o4", "c1", "s3", 5000, "won", closed_at="2026-10-15T10:00:00+00:00",
        product_id="p1", campaign_id="k1")  # fmt: skip
    opp("o5", "c2", "s3", 4000, "won", closed_at="2026-10-20T12:00:00+00:00", product_id="p2")
    opp("o6", "c1", "s4", 1500, "lost", closed_at="2026-10-05T09:00:00+00:00")
    opp("o7", "c2", "s3", 9000, "won", closed_at="2026-09-28T00:00:00+00:00")
    # Team B: won although still standing in s1 (status says won).
    opp("ob", "cb", "s1", 99999, "won", closed_at="2026-10-10T00:00:00+00:00", product_id="p1")
    for rid, cust, o, at, frm, to in (
        ("sc1", "c1", "o4", "2026-10-10T10:00:00+00:00", None, "s3"),
        ("sc2", "c1", "o4", "2026-10-05T10:00:00+00:00", None, "s3"),  # first: cycle start
        ("sc3", "c2", "o5", "2026-10-15T00:00:00+00:00", None, "s3"),
        ("sc4", "c1", "o6", "2026-10-05T09:00:00+00:00", "s2", "s4"),  # lost from Proposal
    ):
        extra = {"from_stage_id": frm} if frm else {}
        make(mgr, "stage_changes", rid, customer_id=cust, opportunity_id=o,
             to_stage_id=to, changed_at=at, **extra)  # fmt: skip


def _people_side(world: World, mgr: Web, admin: Web) -> None:
    a1, a2, b1 = (world.users[n] for n in ("rep_a1", "rep_a2", "rep_b1"))
    for rid, owner, status, tier, source, industry, follow in (
        ("c1", a1, "intent", "high", "web", "制造业", "2026-11-10"),
        ("c2", a2, "intent", "mid", "referral", "制造业", "2026-12-30"),
        ("c3", a1, "potential", "high", None, "零售", "2026-11-23"),
        ("c4", a2, "potential", None, "web", None, "2026-11-22"),
    ):
        fields = {"name": f"客户{rid[1]}", "status": status, "next_follow_up": follow}
        fields.update({k: v for k, v in (("tier", tier), ("source", source),
                                          ("industry", industry)) if v})  # fmt: skip
        make(mgr, "customers", rid, owner, **fields)
    make(admin, "customers", "cb", b1, name="B队客户", status="intent", tier="high",
         source="web", industry="制造业", next_follow_up="2026-01-01")  # fmt: skip
    for rid, owner, start, end, amount, product in (
        ("t1", a1, "2026-10-01", "2026-10-31", 10000, None),
        ("t2", a2, "2026-10-01", "2026-10-31", 8000, None),
        ("t3", a1, "2026-11-01", "2026-11-30", 50000, None),  # outside October
        ("t4", a1, "2026-10-01", "2026-10-31", 3000, "p1"),  # a product target
    ):
        extra = {"product_id": product} if product else {}
        make(mgr, "sales_targets", rid, owner_id=owner, period_start=start,
             period_end=end, amount=amount, **extra)  # fmt: skip
    for rid, cust, at, author in (
        ("a1", "c1", "2026-10-02T09:00:00+08:00", None),  # rep_a1 (owner of c1)
        ("a2", "c2", "2026-10-31T23:00:00+08:00", a1),  # by rep_a1 on c2; Oct 31 local
        ("a3", "c1", "2026-11-01T09:00:00+08:00", None),  # November: not counted
        ("a4", "c2", "2026-10-12T09:00:00+08:00", None),  # rep_a2
    ):
        extra = {"author_id": author} if author else {}
        make(mgr, "activities", rid, customer_id=cust, type="call", occurred_at=at, **extra)
    make(admin, "activities", "ab", customer_id="cb", type="call",
         occurred_at="2026-10-02T09:00:00+08:00")  # fmt: skip


def _marketing(mgr: Web, admin: Web) -> None:
    soon = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    for rid, source, status, converted_to, campaign, converted_at in (
        ("l1", "web", "converted", "c3", "k1", soon),  # ~2 days after it arrived
        ("l2", "web", "qualified", "c1", None, None),  # converted by reference
        ("l3", "web", "new", None, "k1", None),
        ("l4", "referral", "contacted", None, None, None),
        ("l5", "referral", "disqualified", None, None, None),
        ("l6", None, "converted", "c4", None, None),  # (a converted lead names its customer)
    ):
        fields: dict[str, Any] = {"name": rid, "status": status}
        for key, value in (("source", source), ("converted_customer_id", converted_to),
                           ("campaign_id", campaign), ("converted_at", converted_at)):  # fmt: skip
            if value:
                fields[key] = value
        make(mgr, "leads", rid, **fields)
    make(admin, "leads", "lb", name="lb", status="converted", source="web",
         converted_customer_id="cb")  # admin's own  # fmt: skip
    for rid, camp, status, revenue, ref in (
        ("m1", "k1", "converted", 3000, {"customer_id": "c1"}),
        ("m2", "k1", "converted", 1000, {"customer_id": "c2"}),
        ("m3", "k1", "invited", None, {"customer_id": "c2", "lead_id": "l3"}),
        ("m4", "k2", "attended", None, {"customer_id": "c3"}),
        ("mb", "k1", "converted", 7000, {"customer_id": "cb"}),  # team B's customer
    ):
        fields = {"campaign_id": camp, "status": status, **ref}
        if revenue is not None:
            fields["revenue"] = revenue
        make(admin if rid == "mb" else mgr, "campaign_members", rid, **fields)


def _orders(mgr: Web, admin: Web) -> None:
    for qid, cust, kind, status, ordered, lines in (
        ("q1", "c1", "order", "accepted", "2026-10-12T10:00:00+08:00",
         [("ql1", "p1", 2, 100, 0.1, 180), ("ql2", "p2", 1, 50, None, 50)]),
        ("q2", "c2", "order", "draft", "2026-10-13T10:00:00+08:00",
         [("ql3", "p1", 10, 100, None, 1000)]),  # a draft is not placed
        ("q3", "c1", "quote", "accepted", None, [("ql4", "p1", 3, 100, None, 300)]),
        ("q4", "c2", "order", "fulfilled", "2026-11-02T10:00:00+08:00",
         [("ql5", "p2", 4, 50, None, 200)]),  # November
        ("qb", "cb", "order", "accepted", "2026-10-20T10:00:00+08:00",
         [("qlb", "p1", 5, 100, None, 500)]),
    ):  # fmt: skip
        web = admin if cust == "cb" else mgr
        fields: dict[str, Any] = {"customer_id": cust, "kind": kind, "number": qid.upper(),
                                  "status": status}  # fmt: skip
        if ordered:
            fields["ordered_at"] = ordered
        make(web, "quotes", qid, **fields)
        for lid, product, qty, price, discount, total in lines:
            line: dict[str, Any] = {"customer_id": cust, "quote_id": qid, "product_id": product,
                                    "quantity": qty, "unit_price": price, "line_total": total}  # fmt: skip
            if discount is not None:
                line["discount"] = discount
            make(web, "quote_lines", lid, **line)


def _service(mgr: Web, admin: Web) -> None:
    a1, a2 = "u-rep_a1", "u-rep_a2"
    for rid, cust, status, opened, resolved, sat, sla, prio, who in (
        ("tk1", "c1", "open", "2026-11-01T08:00:00+00:00", None, None,
         "2026-11-02T08:00:00+00:00", "high", a1),  # overdue at Nov 23
        ("tk2", "c1", "resolved", "2026-11-01T08:00:00+00:00", "2026-11-01T20:00:00+00:00", 4,
         "2026-11-02T08:00:00+00:00", "normal", a1),  # 12 h, SLA met
        ("tk3", "c2", "resolved", "2026-11-02T00:00:00+00:00", "2026-11-03T12:00:00+00:00", 5,
         "2026-11-03T00:00:00+00:00", "high", a2),  # 36 h, SLA missed
        ("tk4", "c2", "closed", "2026-11-01T00:00:00+08:00", "2026-11-01T06:00:00+00:00", 2,
         None, "normal", a2),  # Oct 31 16:00Z → Nov 1 06:00Z: 14 h
        ("tk5", "c1", "in_progress", None, None, None, "2026-12-01T00:00:00+00:00",
         "urgent", None),  # due after as_of
        ("tkb", "cb", "resolved", "2026-11-01T00:00:00+00:00", "2026-11-11T00:00:00+00:00", 1,
         "2026-11-01T01:00:00+00:00", "high", None),
    ):  # fmt: skip
        fields: dict[str, Any] = {"customer_id": cust, "title": rid, "status": status}
        for key, value in (("opened_at", opened), ("resolved_at", resolved),
                           ("satisfaction", sat), ("sla_due_at", sla), ("priority", prio),
                           ("assignee_id", who)):  # fmt: skip
            if value is not None:
                fields[key] = value
        make(admin if cust == "cb" else mgr, "tickets", rid, **fields)
    for rid, cust, ticket, score in (("sr1", "c1", "tk2", 4), ("sr2", "c2", "tk3", 3),
                                     ("srb", "cb", "tkb", 1)):  # fmt: skip
        make(admin if cust == "cb" else mgr, "satisfaction_responses", rid, customer_id=cust,
             ticket_id=ticket, score=score, responded_at="2026-11-05T10:00:00+08:00")  # fmt: skip


def _follow_ups(mgr: Web, admin: Web) -> None:
    for rid, cust, number, status, ends, remind in (
        ("k-a", "c1", "HT-001", "active", "2026-12-01", None),
        ("k-b", "c2", "HT-002", "signed", "2026-12-23", None),
        ("k-c", "c1", "HT-003", "active", "2026-12-24", None),  # day 31
        ("k-d", "c2", "HT-004", "expired", "2026-11-30", None),
        ("k-e", "c1", "HT-005", "active", "2026-11-22", None),  # past
        ("k-f", "c1", "HT-006", "draft", "2026-12-05", None),
        ("k-g", "c2", "HT-007", "active", "2027-01-10", 60),  # 48 days, asks for 60
        ("k-h", "c1", "HT-008", "active", "2027-03-01", 30),  # 98 days, asks for 30
        ("k-b1", "cb", "HT-B01", "active", "2026-12-01", None),
    ):
        extra = {"remind_days_before": remind} if remind else {}
        make(admin if cust == "cb" else mgr, "contracts", rid, customer_id=cust,
             number=number, status=status, ends_on=ends, amount=50000, **extra)  # fmt: skip
    for rid, cust, status, due in (
        ("ta1", "c1", "open", "2026-11-20T09:00:00+00:00"),
        ("ta2", "c1", "done", "2026-11-01T09:00:00+00:00"),
        ("ta3", "c2", "open", "2026-11-23T13:00:00+00:00"),  # due after as_of
        ("ta4", "c2", "open", "2026-11-22T00:00:00+00:00"),
        ("ta5", "c1", "open", None),
        ("tab", "cb", "open", "2026-01-01T00:00:00+00:00"),
    ):
        fields: dict[str, Any] = {"customer_id": cust, "title": rid, "status": status}
        if due:
            fields["due_at"] = due
        make(admin if cust == "cb" else mgr, "tasks", rid, **fields)


@pytest.fixture(scope="module")
def data(world: World, mgr: Web, admin: Web) -> World:
    _reference(mgr)
    _people_side(world, mgr, admin)
    _pipeline(mgr, admin)
    _marketing(mgr, admin)
    _orders(mgr, admin)
    _service(mgr, admin)
    _follow_ups(mgr, admin)
    return world
