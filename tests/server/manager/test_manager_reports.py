"""Every report against figures worked out by hand on one small fixed data set.

Team A: reps ``rep_a1`` and ``rep_a2`` under ``mgr_a``. One customer of team B (rep_b1)
with an opportunity, a ticket and a contract proves the manager's scope: none of it may
appear in team A's figures. The data is written through the manager API itself.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import pytest

from tests.server.conftest import World, build_world
from tests.server.manager.conftest import Web


def _make(web: Web, collection: str, rid: str, owner: str | None = None, **fields: Any) -> None:
    body: dict[str, Any] = {"id": rid, "fields": fields}
    if owner is not None:
        body["owner_id"] = owner
    response = web.post(f"/v1/manager/records/{collection}", json=body)
    assert response.status_code == 201, response.text


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One SQLite world for the module: the reports are computed in Python, so the
    database does not change them (the write path is tested on both databases)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('reports') / 'fieldsync.db'}"
    w, client = build_world(url)
    with client:
        yield w
    w.context.engine.dispose()


@pytest.fixture(scope="module")
def mgr(world: World) -> Web:
    return Web(world, "mgr_a")


@pytest.fixture(scope="module")
def admin(world: World) -> Web:
    return Web(world, "admin")


@pytest.fixture(scope="module")
def data(world: World, mgr: Web, admin: Web) -> World:
    a1, a2, b1 = (world.users[n] for n in ("rep_a1", "rep_a2", "rep_b1"))
    for sid, name, pos, p in (
        ("s1", "Lead", 1, 0.1),
        ("s2", "Proposal", 2, 0.5),
        ("s3", "Won", 3, 1.0),
        ("s4", "Lost", 4, 0.0),
    ):
        _make(mgr, "pipeline_stages", sid, name=name, position=pos, probability=p)
    _make(mgr, "customers", "c1", a1, name="客户一", status="intent", next_follow_up="2026-11-10")
    _make(mgr, "customers", "c2", a2, name="客户二", status="intent", next_follow_up="2026-12-30")
    _make(
        mgr, "customers", "c3", a1, name="客户三", status="potential", next_follow_up="2026-11-23"
    )
    _make(
        mgr, "customers", "c4", a2, name="客户四", status="potential", next_follow_up="2026-11-22"
    )
    _make(
        admin, "customers", "cb", b1, name="B队客户", status="intent", next_follow_up="2026-01-01"
    )

    def opp(rid: str, cust: str, stage: str, amount: float, status: str, **kw: Any) -> None:
        web = admin if cust == "cb" else mgr
        _make(
            web,
            "opportunities",
            rid,
            customer_id=cust,
            name=rid,
            stage_id=stage,
            amount=amount,
            status=status,
            **kw,
        )

    opp("o1", "c1", "s1", 1000, "open")
    opp("o2", "c1", "s2", 2000, "open", probability=0.8)
    opp("o3", "c2", "s2", 3000, "open")
    opp("o4", "c1", "s3", 5000, "won", closed_at="2026-10-15T10:00:00+00:00")
    opp("o5", "c2", "s3", 4000, "won", closed_at="2026-10-20T12:00:00+00:00")
    opp("o6", "c1", "s4", 1500, "lost", closed_at="2026-10-05T09:00:00+00:00")
    opp("o7", "c2", "s3", 9000, "won", closed_at="2026-09-28T00:00:00+00:00")
    opp("ob", "cb", "s1", 99999, "won", closed_at="2026-10-10T00:00:00+00:00")
    for rid, cust, o, at in (
        ("sc1", "c1", "o4", "2026-10-10T10:00:00+00:00"),
        ("sc2", "c1", "o4", "2026-10-05T10:00:00+00:00"),  # the first one: cycle starts here
        ("sc3", "c2", "o5", "2026-10-15T00:00:00+00:00"),
    ):
        _make(
            mgr,
            "stage_changes",
            rid,
            customer_id=cust,
            opportunity_id=o,
            to_stage_id="s3",
            changed_at=at,
        )
    for rid, owner, start, end, amount in (
        ("t1", a1, "2026-10-01", "2026-10-31", 10000),
        ("t2", a2, "2026-10-01", "2026-10-31", 8000),
        ("t3", a1, "2026-11-01", "2026-11-30", 50000),  # outside October
    ):
        _make(
            mgr,
            "sales_targets",
            rid,
            owner_id=owner,
            period_start=start,
            period_end=end,
            amount=amount,
        )
    for rid, cust, at, author in (
        ("a1", "c1", "2026-10-02T09:00:00+08:00", None),  # rep_a1 (owner of c1)
        ("a2", "c2", "2026-10-31T23:00:00+08:00", a1),  # rep_a1 wrote it on c2; Oct 31 local
        ("a3", "c1", "2026-11-01T09:00:00+08:00", None),  # November: not counted
        ("a4", "c2", "2026-10-12T09:00:00+08:00", None),  # rep_a2
    ):
        extra = {"author_id": author} if author else {}
        _make(mgr, "activities", rid, customer_id=cust, type="call", occurred_at=at, **extra)
    _make(
        admin,
        "activities",
        "ab",
        customer_id="cb",
        type="call",
        occurred_at="2026-10-02T09:00:00+08:00",
    )
    for rid, source, status, converted_to in (
        ("l1", "web", "converted", "c3"),  # a converted lead names its customer
        ("l2", "web", "qualified", "c1"),  # converted by reference
        ("l3", "web", "new", None),
        ("l4", "referral", "contacted", None),
        ("l5", "referral", "disqualified", None),
        ("l6", None, "converted", "c4"),
    ):
        fields: dict[str, Any] = {"name": rid, "status": status}
        if source:
            fields["source"] = source
        if converted_to:
            fields["converted_customer_id"] = converted_to
        _make(mgr, "leads", rid, **fields)
    _make(  # admin's own
        admin,
        "leads",
        "lb",
        name="lb",
        status="converted",
        source="web",
        converted_customer_id="cb",
    )
    _make(mgr, "campaigns", "k1", name="Expo", cost=2000, budget=5000)
    _make(mgr, "campaigns", "k2", name="Mailing", budget=1000)
    _make(mgr, "campaigns", "k3", name="Idle")
    for rid, camp, status, revenue in (
        ("m1", "k1", "converted", 3000),
        ("m2", "k1", "converted", 1000),
        ("m3", "k1", "invited", None),
        ("m4", "k2", "attended", None),
    ):
        fields = {"campaign_id": camp, "status": status}
        if revenue is not None:
            fields["revenue"] = revenue
        _make(mgr, "campaign_members", rid, **fields)
    for rid, cust, status, opened, resolved, sat in (
        ("tk1", "c1", "open", "2026-11-01T08:00:00+00:00", None, None),
        ("tk2", "c1", "resolved", "2026-11-01T08:00:00+00:00", "2026-11-01T20:00:00+00:00", 4),
        ("tk3", "c2", "resolved", "2026-11-02T00:00:00+00:00", "2026-11-03T12:00:00+00:00", 5),
        ("tk4", "c2", "closed", "2026-11-01T00:00:00+08:00", "2026-11-01T06:00:00+00:00", 2),
        ("tk5", "c1", "in_progress", None, None, None),
        ("tkb", "cb", "resolved", "2026-11-01T00:00:00+00:00", "2026-11-11T00:00:00+00:00", 1),
    ):
        fields = {"customer_id": cust, "title": rid, "status": status}
        fields.update(
            {
                k: v
                for k, v in (
                    ("opened_at", opened),
                    ("resolved_at", resolved),
                    ("satisfaction", sat),
                )
                if v is not None
            }
        )
        _make(admin if cust == "cb" else mgr, "tickets", rid, **fields)
    for rid, cust, number, status, ends in (
        ("k-a", "c1", "HT-001", "active", "2026-12-01"),
        ("k-b", "c2", "HT-002", "signed", "2026-12-23"),
        ("k-c", "c1", "HT-003", "active", "2026-12-24"),
        ("k-d", "c2", "HT-004", "expired", "2026-11-30"),
        ("k-e", "c1", "HT-005", "active", "2026-11-22"),
        ("k-f", "c1", "HT-006", "draft", "2026-12-05"),
        ("k-b1", "cb", "HT-B01", "active", "2026-12-01"),
    ):
        _make(
            admin if cust == "cb" else mgr,
            "contracts",
            rid,
            customer_id=cust,
            number=number,
            status=status,
            ends_on=ends,
            amount=50000,
        )
    for rid, cust, status, due in (
        ("ta1", "c1", "open", "2026-11-20T09:00:00+00:00"),
        ("ta2", "c1", "done", "2026-11-01T09:00:00+00:00"),
        ("ta3", "c2", "open", "2026-11-23T13:00:00+00:00"),  # due after as_of
        ("ta4", "c2", "open", "2026-11-22T00:00:00+00:00"),
        ("ta5", "c1", "open", None),
        ("tab", "cb", "open", "2026-01-01T00:00:00+00:00"),
    ):
        fields = {"customer_id": cust, "title": rid, "status": status}
        if due:
            fields["due_at"] = due
        _make(admin if cust == "cb" else mgr, "tasks", rid, **fields)
    return world


def _get(web: Web, path: str, **params: Any) -> Any:
    response = web.get(f"/v1/manager/reports/{path}", params=params)
    assert response.status_code == 200, response.text
    return response.json() if params.get("format") != "csv" else response


def test_funnel(data: World, mgr: Web, admin: Web) -> None:
    report = _get(mgr, "funnel")
    stages = [
        (s["stage_id"], s["count"], s["amount"], s["weighted_amount"]) for s in report["stages"]
    ]
    assert stages == [
        ("s1", 1, 1000, pytest.approx(100)),  # o1: 1000 × stage 0.1
        ("s2", 2, 5000, pytest.approx(3100)),  # o2: 2000 × own 0.8 = 1600; o3: 3000 × 0.5 = 1500
        ("s3", 3, 18000, pytest.approx(18000)),  # o4 5000 + o5 4000 + o7 9000, × 1.0
        ("s4", 1, 1500, pytest.approx(0)),  # o6 × 0.0
    ]
    assert report["total_count"] == 7
    assert report["total_amount"] == 25500  # 1000 + 5000 + 18000 + 1500
    assert report["total_weighted_amount"] == pytest.approx(21200)  # 100 + 3100 + 18000 + 0
    # The admin also sees team B's ob (99999 at s1, × 0.1).
    s1 = _get(admin, "funnel")["stages"][0]
    assert (s1["count"], s1["amount"], s1["weighted_amount"]) == (2, 100999, pytest.approx(10099.9))
    text = _get(mgr, "funnel", format="csv")
    assert text.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(text.text)))
    assert [(r["stage_id"], r["name"], r["count"]) for r in rows] == [
        ("s1", "Lead", "1"),
        ("s2", "Proposal", "2"),
        ("s3", "Won", "3"),
        ("s4", "Lost", "1"),
    ]


def test_rep_performance(data: World, mgr: Web) -> None:
    report = _get(mgr, "rep-performance", start="2026-10-01", end="2026-10-31")
    reps = {r["rep_id"]: r for r in report["reps"]}
    assert set(reps) == {"u-rep_a1", "u-rep_a2"}  # team A's reps only
    a1, a2 = reps["u-rep_a1"], reps["u-rep_a2"]
    assert a1["target"] == 10000  # t1 (t3 is November)
    assert a1["won_amount"] == 5000  # o4
    assert a1["attainment"] == pytest.approx(0.5)  # 5000 / 10000
    assert (a1["won_count"], a1["lost_count"]) == (1, 1)  # o4 won, o6 lost
    assert a1["win_rate"] == pytest.approx(0.5)  # 1 / (1 + 1)
    assert a1["avg_cycle_days"] == pytest.approx(10.0)  # sc2 Oct 5 10:00 → closed Oct 15 10:00
    assert a1["activities"] == 2  # a1 (owner) + a2 (author on c2); a3 is November
    assert a2["target"] == 8000
    assert a2["won_amount"] == 4000  # o5 (o7 closed in September)
    assert a2["attainment"] == pytest.approx(0.5)  # 4000 / 8000
    assert (a2["won_count"], a2["lost_count"]) == (1, 0)
    assert a2["win_rate"] == pytest.approx(1.0)
    assert a2["avg_cycle_days"] == pytest.approx(5.5)  # Oct 15 00:00 → Oct 20 12:00
    assert a2["activities"] == 1  # a4
    rows = list(
        csv.DictReader(
            io.StringIO(
                _get(
                    mgr, "rep-performance", start="2026-10-01", end="2026-10-31", format="csv"
                ).text
            )
        )
    )
    assert [(r["rep_id"], r["won_amount"]) for r in rows] == [
        ("u-rep_a1", "5000.0"),
        ("u-rep_a2", "4000.0"),
    ]


def test_lead_conversion(data: World, mgr: Web) -> None:
    report = _get(mgr, "lead-conversion")
    assert [(s["source"], s["leads"], s["converted"]) for s in report["sources"]] == [
        ("referral", 2, 0),
        ("unknown", 1, 1),  # l6 has no source
        ("web", 3, 2),  # l1 (status) + l2 (converted_customer_id); lb is the admin's
    ]
    rates = [s["conversion_rate"] for s in report["sources"]]
    assert rates == [0, 1, pytest.approx(2 / 3)]
    assert (report["total_leads"], report["total_converted"]) == (6, 3)


def test_campaigns(data: World, mgr: Web) -> None:
    report = _get(mgr, "campaigns")
    got = {c["name"]: c for c in report["campaigns"]}
    assert [c["name"] for c in report["campaigns"]] == ["Expo", "Idle", "Mailing"]
    expo = got["Expo"]
    assert (expo["members"], expo["conversions"], expo["revenue"], expo["cost"]) == (
        3,
        2,
        4000,
        2000,  # m1 3000 + m2 1000; cost 2000 (cost wins over budget)
    )
    assert expo["conversion_rate"] == pytest.approx(2 / 3)
    assert expo["roi"] == pytest.approx(1.0)  # (4000 − 2000) / 2000
    mailing = got["Mailing"]
    assert (mailing["members"], mailing["conversions"], mailing["revenue"], mailing["cost"]) == (
        1,
        0,
        0,
        1000,  # no cost: the budget
    )
    assert mailing["roi"] == pytest.approx(-1.0)  # (0 − 1000) / 1000
    idle = got["Idle"]
    assert (idle["members"], idle["conversion_rate"], idle["roi"]) == (0, None, None)


def test_tickets(data: World, mgr: Web) -> None:
    report = _get(mgr, "tickets")
    assert [
        (s["status"], s["count"], s["avg_resolution_hours"], s["avg_satisfaction"])
        for s in report["statuses"]
    ] == [
        ("open", 1, None, None),
        ("in_progress", 1, None, None),
        ("resolved", 2, pytest.approx(24.0), pytest.approx(4.5)),  # (12 h + 36 h) / 2; (4+5)/2
        ("closed", 1, pytest.approx(14.0), pytest.approx(2.0)),  # Oct 31 16:00Z → Nov 1 06:00Z
    ]
    assert report["total"] == 5  # tkb is team B's
    assert report["avg_resolution_hours"] == pytest.approx(62 / 3)  # (12 + 36 + 14) / 3
    assert report["avg_satisfaction"] == pytest.approx(11 / 3)  # (4 + 5 + 2) / 3


def test_contracts_expiring(data: World, mgr: Web) -> None:
    report = _get(mgr, "contracts-expiring", days=30, today="2026-11-23")
    assert [(c["number"], c["days_left"], c["customer_name"]) for c in report["contracts"]] == [
        ("HT-001", 8, "客户一"),  # Dec 1 − Nov 23
        ("HT-002", 30, "客户二"),  # Dec 23: the last day of the window is included
    ]  # HT-003 is day 31, HT-004 expired, HT-005 past, HT-006 draft, HT-B01 team B
    rows = list(
        csv.DictReader(
            io.StringIO(
                _get(mgr, "contracts-expiring", days=30, today="2026-11-23", format="csv").text
            )
        )
    )
    assert [r["contract_id"] for r in rows] == ["k-a", "k-b"]


def test_overdue_follow_ups(data: World, mgr: Web) -> None:
    report = _get(mgr, "overdue-follow-ups", as_of="2026-11-23T12:00:00+00:00")
    got = {
        r["owner_id"]: (
            [t["task_id"] for t in r["tasks"]],
            [c["customer_id"] for c in r["customers"]],
            r["overdue_tasks"],
            r["overdue_follow_ups"],
        )
        for r in report["reps"]
    }
    assert got == {
        # ta1 past due; c1 (Nov 10) past; c3 (Nov 23) is due today, not overdue
        "u-rep_a1": (["ta1"], ["c1"], 1, 1),
        # ta4 past due (ta3 due after as_of); c4 (Nov 22) past
        "u-rep_a2": (["ta4"], ["c4"], 1, 1),
    }
    rows = list(
        csv.DictReader(
            io.StringIO(
                _get(
                    mgr, "overdue-follow-ups", as_of="2026-11-23T12:00:00+00:00", format="csv"
                ).text
            )
        )
    )
    assert [(r["owner_id"], r["kind"], r["record_id"]) for r in rows] == [
        ("u-rep_a1", "task", "ta1"),
        ("u-rep_a1", "follow_up", "c1"),
        ("u-rep_a2", "task", "ta4"),
        ("u-rep_a2", "follow_up", "c4"),
    ]
