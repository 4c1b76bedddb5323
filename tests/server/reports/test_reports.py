"""Every report against figures worked out by hand (the data set and its comments are in
``conftest.py``), on SQLite and PostgreSQL, in JSON and CSV, in English and Chinese; and
scope: team A's manager never sees team B's numbers, nor team B's manager team A's."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from tests.server.conftest import World
from tests.server.manager.conftest import Web
from tests.server.reports.conftest import TEAM_B_IDS

approx = pytest.approx


def get(web: Web, path: str, **params: Any) -> Any:
    response = web.get(f"/v1/manager/reports/{path}", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def get_csv(web: Web, path: str, **params: Any) -> list[dict[str, str]]:
    response = web.get(f"/v1/manager/reports/{path}", params={**params, "format": "csv"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.text)))


def test_funnel_live_deals_and_conversion(data: World, mgr: Web) -> None:
    report = get(mgr, "funnel")
    got = [
        (s["stage_id"], s["count"], s["amount"], s["weighted_amount"], s["reached"],
         s["advanced"], s["conversion_rate"])
        for s in report["stages"]
    ]  # fmt: skip
    assert got == [
        # o1 live; reached by o1, o2, o3, o6 (from s2), o4, o5, o7 (won); 6 went on
        ("s1", 1, 1000, approx(100), 7, 6, approx(6 / 7, abs=1e-4)),
        # o2 2000 × own 0.8 + o3 3000 × 0.5; reached by o2, o3, o6 + 3 won; 3 won
        ("s2", 2, 5000, approx(3100), 6, 3, approx(0.5)),
    ]  # Won and Lost stages are not live stages: no row
    assert (report["total_count"], report["total_amount"]) == (3, 6000)
    assert report["total_weighted_amount"] == approx(3200)
    assert (report["deals"], report["won"], report["win_rate"]) == (7, 3, approx(0.4286))
    assert [s["name"] for s in report["stages"]] == ["Lead", "Proposal"]
    zh = get(mgr, "funnel", lang="zh")
    assert [s["name"] for s in zh["stages"]] == ["初步接触", "方案报价"]
    by_header = mgr.get("/v1/manager/reports/funnel", headers={"Accept-Language": "zh-CN"})
    assert by_header.json()["stages"][0]["name"] == "初步接触"
    rows = get_csv(mgr, "funnel", lang="zh")
    assert [(r["stage_id"], r["name"], r["count"], r["reached"]) for r in rows] == [
        ("s1", "初步接触", "1", "7"),
        ("s2", "方案报价", "2", "6"),
    ]


def test_funnel_scope(data: World, admin: Web, mgr_b: Web) -> None:
    # ob is won (status) though it stands in s1: not live, but reached every stage.
    everyone = get(admin, "funnel")
    assert [(s["stage_id"], s["count"], s["reached"]) for s in everyone["stages"]] == [
        ("s1", 1, 8),
        ("s2", 2, 7),
    ]
    assert (everyone["deals"], everyone["won"]) == (8, 4)
    team_b = get(mgr_b, "funnel")
    assert [(s["count"], s["reached"], s["advanced"]) for s in team_b["stages"]] == [
        (0, 1, 1),
        (0, 1, 1),
    ]
    assert (team_b["deals"], team_b["won"], team_b["total_amount"]) == (1, 1, 0)


def test_rep_performance(data: World, mgr: Web) -> None:
    report = get(mgr, "rep-performance", start="2026-10-01", end="2026-10-31")
    reps = {r["rep_id"]: r for r in report["reps"]}
    assert set(reps) == {"u-rep_a1", "u-rep_a2"}  # team A's reps only
    a1, a2 = reps["u-rep_a1"], reps["u-rep_a2"]
    assert a1["target"] == 10000  # t1 (t3 is November, t4 is a product target)
    assert a1["won_amount"] == 5000  # o4
    assert a1["attainment"] == approx(0.5)
    assert (a1["won_count"], a1["lost_count"], a1["win_rate"]) == (1, 1, approx(0.5))
    assert a1["avg_cycle_days"] == approx(10.0)  # sc2 Oct 5 10:00 → closed Oct 15 10:00
    assert a1["activities"] == 2  # a1 (owner) + a2 (author, Oct 31 local); a3 is November
    assert (a2["target"], a2["won_amount"], a2["attainment"]) == (8000, 4000, approx(0.5))
    assert (a2["won_count"], a2["lost_count"], a2["win_rate"]) == (1, 0, approx(1.0))
    assert a2["avg_cycle_days"] == approx(5.5)  # Oct 15 00:00 → Oct 20 12:00
    assert a2["activities"] == 1  # a4
    assert a1["periods"] == []
    rows = get_csv(mgr, "rep-performance", start="2026-10-01", end="2026-10-31")
    assert [(r["rep_id"], r["period"], r["won_amount"]) for r in rows] == [
        ("u-rep_a1", "total", "5000.0"),
        ("u-rep_a2", "total", "4000.0"),
    ]


def test_rep_performance_per_month(data: World, mgr: Web) -> None:
    report = get(mgr, "rep-performance", start="2026-09-01", end="2026-10-31", period="month")
    a2 = next(r for r in report["reps"] if r["rep_id"] == "u-rep_a2")
    assert (a2["won_amount"], a2["target"], a2["won_count"]) == (13000, 8000, 2)  # o7 + o5
    months = {p["period"]: p for p in a2["periods"]}
    assert list(months) == ["2026-09", "2026-10"]
    assert (months["2026-09"]["won_amount"], months["2026-09"]["target"]) == (9000, 0)
    assert months["2026-09"]["attainment"] is None  # no target in September
    assert (months["2026-10"]["won_amount"], months["2026-10"]["attainment"]) == (
        4000,
        approx(0.5),
    )
    assert (months["2026-09"]["start"], months["2026-09"]["end"]) == ("2026-09-01", "2026-09-30")
    rows = get_csv(mgr, "rep-performance", start="2026-09-01", end="2026-10-31", period="month")
    assert [(r["rep_id"], r["period"]) for r in rows] == [
        ("u-rep_a1", "total"),
        ("u-rep_a1", "2026-09"),
        ("u-rep_a1", "2026-10"),
        ("u-rep_a2", "total"),
        ("u-rep_a2", "2026-09"),
        ("u-rep_a2", "2026-10"),
    ]


def test_rep_performance_scope(data: World, mgr_b: Web) -> None:
    report = get(mgr_b, "rep-performance", start="2026-10-01", end="2026-10-31")
    assert [(r["rep_id"], r["won_amount"], r["activities"]) for r in report["reps"]] == [
        ("u-rep_b1", 99999, 1)  # ob; ab
    ]


def test_product_performance(data: World, mgr: Web, admin: Web, mgr_b: Web) -> None:
    report = get(mgr, "product-performance", start="2026-10-01", end="2026-10-31")
    got = {
        p["product_id"]: (p["name"], p["target"], p["won_count"], p["won_amount"], p["orders"],
                          p["quantity"], p["order_revenue"], p["attainment"])
        for p in report["products"]
    }  # fmt: skip
    assert got == {
        # t4; o4; q1's ql1 (q2 is a draft, q3 a quote, qb team B's)
        "p1": ("智能门锁", 3000, 1, 5000, 1, 2, 180, approx(0.06)),
        "p2": ("Router", 0, 1, 4000, 1, 1, 50, None),  # o5; ql2 (q4 is November)
    }
    assert [p["product_id"] for p in report["products"]] == ["p1", "p2"]  # by revenue
    p1 = next(p for p in get(admin, "product-performance", start="2026-10-01",
                             end="2026-10-31")["products"] if p["product_id"] == "p1")  # fmt: skip
    assert (p1["won_count"], p1["orders"], p1["quantity"], p1["order_revenue"]) == (2, 2, 7, 680)
    b = {p["product_id"]: p for p in get(mgr_b, "product-performance", start="2026-10-01",
                                          end="2026-10-31")["products"]}  # fmt: skip
    assert (b["p1"]["target"], b["p1"]["won_amount"], b["p1"]["order_revenue"]) == (0, 99999, 500)
    assert (b["p2"]["won_count"], b["p2"]["orders"]) == (0, 0)
    rows = get_csv(mgr, "product-performance", start="2026-10-01", end="2026-10-31")
    assert [(r["product_id"], r["order_revenue"]) for r in rows] == [
        ("p1", "180.0"),
        ("p2", "50.0"),
    ]


def _groups(report: dict[str, Any], dimension: str) -> list[tuple[Any, ...]]:
    dim = next(d for d in report["dimensions"] if d["dimension"] == dimension)
    return [
        (g["value"], g["label"], g["customers"], g["with_open_deals"], g["open_pipeline"],
         g["won_amount"])
        for g in dim["groups"]
    ]  # fmt: skip


def test_customer_analysis(data: World, mgr: Web) -> None:
    report = get(mgr, "customers", lang="zh")
    assert report["total"] == 4
    # c1: o1+o2 open 3000, o4 won 5000; c2: o3 open 3000, o5+o7 won 13000
    assert _groups(report, "status") == [
        ("potential", "潜在客户", 2, 0, 0, 0),
        ("intent", "意向客户", 2, 2, 6000, 18000),
    ]
    assert _groups(report, "tier") == [
        ("high", "高", 2, 1, 3000, 5000),  # c1, c3
        ("mid", "中", 1, 1, 3000, 13000),  # c2
        (None, "未填写", 1, 0, 0, 0),  # c4
    ]
    assert _groups(report, "source") == [  # the schema's order of choices
        ("referral", "转介绍", 1, 1, 3000, 13000),
        ("web", "官网", 2, 1, 3000, 5000),
        (None, "未填写", 1, 0, 0, 0),
    ]
    assert _groups(report, "industry") == [
        ("制造业", "制造业", 2, 2, 6000, 18000),
        ("零售", "零售", 1, 0, 0, 0),
        (None, "未填写", 1, 0, 0, 0),
    ]
    status = next(d for d in report["dimensions"] if d["dimension"] == "status")
    assert status["label"] == "状态"
    assert [g["share"] for g in status["groups"]] == [0.5, 0.5]
    october = get(mgr, "customers", start="2026-10-01", end="2026-10-31")
    assert _groups(october, "status")[1] == ("intent", "Intent", 2, 2, 6000, 9000)  # no o7
    rows = get_csv(mgr, "customers")
    assert [(r["dimension"], r["value"], r["customers"]) for r in rows][:2] == [
        ("status", "potential", "2"),
        ("status", "intent", "2"),
    ]
    assert len(rows) == 11


def test_customer_analysis_scope(data: World, mgr_b: Web) -> None:
    report = get(mgr_b, "customers")
    assert report["total"] == 1
    assert _groups(report, "status") == [("intent", "Intent", 1, 0, 0, 99999)]


def test_campaigns(data: World, mgr: Web) -> None:
    report = get(mgr, "campaigns", lang="zh")
    assert [c["name"] for c in report["campaigns"]] == ["Expo", "Idle", "Mailing"]
    got = {
        c["name"]: (c["members"], c["engaged"], c["conversions"], c["revenue"], c["cost"],
                    c["roi"], c["leads"], c["converted_leads"], c["won_count"], c["won_amount"])
        for c in report["campaigns"]
    }  # fmt: skip
    assert got == {
        # m1 3000 + m2 1000 (+ m3 invited; mb is team B's); cost wins over budget;
        # leads l1 (converted) and l3; o4 won
        "Expo": (3, 2, 2, 4000, 2000, approx(1.0), 2, 1, 1, 5000),
        "Idle": (0, 0, 0, 0, 0, None, 0, 0, 0, 0),
        "Mailing": (1, 1, 0, 0, 1000, approx(-1.0), 0, 0, 0, 0),  # m4
    }
    expo = report["campaigns"][0]
    assert (expo["channel_label"], expo["conversion_rate"]) == ("线下活动", approx(0.6667))
    rows = get_csv(mgr, "campaigns")
    assert [(r["campaign_id"], r["members"], r["revenue"]) for r in rows] == [
        ("k1", "3", "4000.0"),
        ("k3", "0", "0.0"),
        ("k2", "1", "0.0"),
    ]


def test_campaign_members_scope(data: World, admin: Web, mgr_b: Web) -> None:
    everyone = {c["name"]: c for c in get(admin, "campaigns")["campaigns"]}
    assert (everyone["Expo"]["members"], everyone["Expo"]["revenue"]) == (4, 11000)
    assert everyone["Mailing"]["members"] == 1
    team_b = {c["name"]: c for c in get(mgr_b, "campaigns")["campaigns"]}
    assert (team_b["Expo"]["members"], team_b["Expo"]["conversions"]) == (1, 1)  # mb only
    assert (team_b["Expo"]["revenue"], team_b["Expo"]["leads"]) == (7000, 0)
    assert team_b["Mailing"]["members"] == 0


AS_OF = "2026-11-23T12:00:00+00:00"


def _ticket_rows(report: dict[str, Any], key: str, name: str, *cols: str) -> list[tuple[Any, ...]]:
    return [(r[name], *(r[c] for c in cols)) for r in report[key]]


def test_tickets(data: World, mgr: Web) -> None:
    report = get(mgr, "tickets", as_of=AS_OF)
    assert (report["total"], report["open"]) == (5, 2)  # tk1, tk5 open
    assert report["avg_resolution_hours"] == approx(20.67)  # (12 + 36 + 14) / 3
    assert report["avg_satisfaction"] == approx(3.67)  # (4 + 5 + 2) / 3
    assert (report["survey_responses"], report["avg_survey_score"]) == (2, approx(3.5))
    cols = ("count", "open", "avg_resolution_hours", "avg_satisfaction")
    assert _ticket_rows(report, "statuses", "status", *cols) == [
        ("open", 1, 1, None, None),
        ("in_progress", 1, 1, None, None),
        ("resolved", 2, 0, approx(24.0), approx(4.5)),  # (12 h + 36 h) / 2; (4 + 5) / 2
        ("closed", 1, 0, approx(14.0), approx(2.0)),
    ]
    assert _ticket_rows(report, "priorities", "priority", *cols) == [
        ("urgent", 1, 1, None, None),
        ("high", 2, 1, approx(36.0), approx(5.0)),
        ("normal", 2, 0, approx(13.0), approx(3.0)),
    ]
    assert _ticket_rows(report, "agents", "assignee_id", *cols) == [
        ("u-rep_a1", 2, 1, approx(12.0), approx(4.0)),
        ("u-rep_a2", 2, 0, approx(25.0), approx(3.5)),
        (None, 1, 1, None, None),
    ]
    zh = get(mgr, "tickets", as_of=AS_OF, lang="zh")
    assert [s["label"] for s in zh["statuses"]] == ["待处理", "处理中", "已解决", "已关闭"]
    lines = get_csv(mgr, "tickets", as_of=AS_OF)
    assert [(r["breakdown"], r["key"], r["count"]) for r in lines][:2] == [
        ("status", "open", "1"),
        ("status", "in_progress", "1"),
    ]
    assert len(lines) == 4 + 3 + 3


def test_ticket_sla(data: World, mgr: Web, mgr_b: Web) -> None:
    report = get(mgr, "tickets", as_of=AS_OF)
    assert (report["overdue"], report["sla_met_rate"]) == (1, approx(0.5))  # tk1; tk2 met, tk3 not
    cols = ("overdue", "sla_met_rate")
    assert _ticket_rows(report, "statuses", "status", *cols) == [
        ("open", 1, None),
        ("in_progress", 0, None),  # tk5 is due after as_of
        ("resolved", 0, approx(0.5)),
        ("closed", 0, None),  # tk4 has no SLA
    ]
    assert _ticket_rows(report, "priorities", "priority", *cols) == [
        ("urgent", 0, None),
        ("high", 1, approx(0.0)),
        ("normal", 0, approx(1.0)),
    ]
    assert _ticket_rows(report, "agents", "assignee_id", *cols) == [
        ("u-rep_a1", 1, approx(1.0)),
        ("u-rep_a2", 0, approx(0.0)),
        (None, 0, None),
    ]
    assert get(mgr_b, "tickets", as_of=AS_OF)["sla_met_rate"] == approx(0.0)  # tkb late


def test_tickets_scope(data: World, mgr_b: Web) -> None:
    report = get(mgr_b, "tickets", as_of=AS_OF)
    assert (report["total"], report["avg_resolution_hours"]) == (1, approx(240.0))  # tkb
    assert (report["survey_responses"], report["avg_survey_score"]) == (1, approx(1.0))


def test_lead_conversion(data: World, mgr: Web, admin: Web) -> None:
    report = get(mgr, "lead-conversion", lang="zh")
    assert [(s["source"], s["label"], s["leads"], s["converted"]) for s in report["sources"]] == [
        ("referral", "转介绍", 2, 0),
        ("unknown", "未填写", 1, 1),  # l6 has no source
        ("web", "官网", 3, 2),  # l1 (status) + l2 (converted_customer_id); lb is the admin's
    ]
    assert [s["conversion_rate"] for s in report["sources"]] == [0, 1, approx(2 / 3, abs=1e-4)]
    assert (report["total_leads"], report["total_converted"]) == (6, 3)
    web = report["sources"][2]
    assert web["avg_days_to_convert"] == approx(2.0, abs=0.01)  # l1 only has converted_at
    assert [(o["owner_id"], o["leads"]) for o in report["owners"]] == [("u-mgr_a", 6)]
    assert [(s["status"], s["leads"]) for s in report["statuses"]] == [
        ("new", 1),
        ("contacted", 1),
        ("qualified", 1),
        ("disqualified", 1),
        ("converted", 2),
    ]
    assert get(admin, "lead-conversion")["total_leads"] == 7
    assert get(mgr, "lead-conversion", start="2000-01-01", end="2000-12-31")["total_leads"] == 0
    rows = get_csv(mgr, "lead-conversion")
    assert [(r["source"], r["leads"]) for r in rows] == [
        ("referral", "2"),
        ("unknown", "1"),
        ("web", "3"),
    ]


def test_lead_conversion_scope(data: World, mgr_b: Web) -> None:
    assert get(mgr_b, "lead-conversion")["total_leads"] == 0  # lb is the admin's own


def test_contracts_expiring(data: World, mgr: Web, mgr_b: Web) -> None:
    report = get(mgr, "contracts-expiring", days=30, today="2026-11-23", lang="zh")
    assert [
        (c["number"], c["days_left"], c["customer_name"], c["reminder"], c["status_label"])
        for c in report["contracts"]
    ] == [
        ("HT-001", 8, "客户1", False, "执行中"),  # Dec 1 − Nov 23
        ("HT-002", 30, "客户2", False, "已签订"),  # the last day of the window is included
        ("HT-007", 48, "客户2", True, "执行中"),  # outside 30 days, inside its own 60
    ]  # HT-003 is day 31, HT-004 expired, HT-005 past, HT-006 draft, HT-008 not yet
    rows = get_csv(mgr, "contracts-expiring", days=30, today="2026-11-23")
    assert [r["contract_id"] for r in rows] == ["k-a", "k-b", "k-g"]
    team_b = get(mgr_b, "contracts-expiring", days=30, today="2026-11-23")
    assert [c["number"] for c in team_b["contracts"]] == ["HT-B01"]


def test_overdue_follow_ups(data: World, mgr: Web, mgr_b: Web) -> None:
    report = get(mgr, "overdue-follow-ups", as_of="2026-11-23T12:00:00+00:00")
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
    rows = get_csv(mgr, "overdue-follow-ups", as_of="2026-11-23T12:00:00+00:00")
    assert [(r["owner_id"], r["kind"], r["record_id"]) for r in rows] == [
        ("u-rep_a1", "task", "ta1"),
        ("u-rep_a1", "follow_up", "c1"),
        ("u-rep_a2", "task", "ta4"),
        ("u-rep_a2", "follow_up", "c4"),
    ]
    team_b = get(mgr_b, "overdue-follow-ups", as_of="2026-11-23T12:00:00+00:00")
    assert [(r["owner_id"], r["overdue_tasks"]) for r in team_b["reps"]] == [("u-rep_b1", 1)]


def test_overdue_lists_are_capped_per_rep_but_counts_are_complete(data: World, mgr: Web) -> None:
    late = "2026-12-31T00:00:00+00:00"
    full = {r["owner_id"]: r for r in get(mgr, "overdue-follow-ups", as_of=late)["reps"]}
    short = {
        r["owner_id"]: r for r in get(mgr, "overdue-follow-ups", as_of=late, per_rep=1)["reps"]
    }
    assert set(full) == set(short)
    assert any(len(r["tasks"]) + len(r["customers"]) > 2 for r in full.values())  # something cut
    for owner, r in short.items():
        f = full[owner]
        assert (r["overdue_tasks"], r["overdue_follow_ups"]) == (
            f["overdue_tasks"],
            f["overdue_follow_ups"],
        )
        assert (r["tasks"], r["customers"]) == (f["tasks"][:1], f["customers"][:1])


REPORTS: list[tuple[str, dict[str, str]]] = [
    ("funnel", {}),
    ("rep-performance", {"start": "2026-01-01", "end": "2026-12-31", "period": "quarter"}),
    ("product-performance", {"start": "2026-01-01", "end": "2026-12-31"}),
    ("customers", {}),
    ("campaigns", {}),
    ("tickets", {"as_of": "2026-11-23T12:00:00+00:00"}),
    ("lead-conversion", {}),
    ("contracts-expiring", {"days": "365", "today": "2026-01-01"}),
    ("overdue-follow-ups", {"as_of": "2026-12-31T00:00:00+00:00"}),
]


@pytest.mark.parametrize(("path", "params"), REPORTS, ids=[r[0] for r in REPORTS])
def test_no_report_names_another_teams_records_or_people(
    data: World, mgr: Web, mgr_b: Web, path: str, params: dict[str, str]
) -> None:
    """Team A's manager: no id of a team-B record or person, in JSON or CSV; team B's
    manager: none of team A's people."""
    for fmt in ("json", "csv"):
        text = mgr.get(f"/v1/manager/reports/{path}", params={**params, "format": fmt}).text
        leaked = [i for i in TEAM_B_IDS if f'"{i}"' in text or f"\n{i}," in text]
        assert not leaked and "u-rep_b1" not in text and "B队" not in text, (fmt, leaked)
        other = mgr_b.get(f"/v1/manager/reports/{path}", params={**params, "format": fmt}).text
        assert "u-rep_a1" not in other and "u-rep_a2" not in other and "客户1" not in other


def test_reports_refuse_reps(data: World) -> None:
    rep = Web(data, "rep_a1")
    for path, params in REPORTS:
        response = rep.get(f"/v1/manager/reports/{path}", params=params)
        assert response.status_code == 403, path
