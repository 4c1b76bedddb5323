"""The dashboard's figures for the caller's team: visits and calls per rep this week
(author, else owner; other weeks and other kinds left out), open conflicts, the live
funnel — as the JSON the charts draw."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from server.console.services.dashboard import week_start
from tests.server.conftest import World
from tests.server.console.conftest import Browser


def _chart(html: str, chart: str) -> Any:
    found = re.search(
        rf'<script type="application/json" id="chart-{chart}-data">(.*?)</script>', html, re.S
    )
    assert found is not None, chart
    return json.loads(found.group(1))


def test_week_activity_per_rep(world: World) -> None:
    monday = week_start(datetime.now(UTC))
    a1, a2, b1 = world.phone("rep_a1"), world.phone("rep_a2"), world.phone("rep_b1")
    a1.push_one("customers", "c-1", {"name": "甲", "status": "intent"})
    a2.push_one("customers", "c-2", {"name": "乙", "status": "intent"})
    b1.push_one("customers", "c-b", {"name": "丙", "status": "intent"})

    def act(phone: Any, rid: str, customer: str, kind: str, when: datetime, **extra: Any) -> None:
        fields = {"customer_id": customer, "type": kind, "occurred_at": when.isoformat(), **extra}
        phone.push_one("activities", rid, fields)

    this_week = monday + timedelta(hours=10)
    act(a1, "a1", "c-1", "visit", this_week)
    act(a1, "a2", "c-1", "visit", this_week + timedelta(days=1))
    act(a1, "a3", "c-1", "call", this_week)
    act(a1, "a4", "c-1", "meeting", this_week)  # not a visit or call
    act(a1, "a5", "c-1", "visit", monday - timedelta(hours=1))  # last week
    act(a1, "a6", "c-1", "call", this_week, author_id="u-rep_a2")  # logged for rep_a2
    act(a2, "a7", "c-2", "call", this_week)
    act(b1, "a8", "c-b", "visit", this_week)  # team B
    html = Browser(world, "mgr_a").get("/console/").text
    week = _chart(html, "week")
    per_rep = dict(
        zip(
            week["names"],
            zip(week["series"][0]["values"], week["series"][1]["values"], strict=True),
            strict=True,
        )
    )
    assert per_rep == {"rep_a1": (2, 1), "rep_a2": (0, 2)}


def test_overdue_counts_match_the_report(world: World) -> None:
    a1 = world.phone("rep_a1")
    past = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    future = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    a1.push_one("customers", "c-1", {"name": "甲", "status": "intent", "next_follow_up": yesterday})
    a1.push_one("customers", "c-2", {"name": "乙", "status": "intent"})
    for rid, due, status in (
        ("t1", past, "open"),
        ("t2", past, "done"),
        ("t3", future, "open"),
        ("t4", past, "open"),
    ):
        a1.push_one(
            "tasks", rid, {"customer_id": "c-2", "title": "回访", "status": status, "due_at": due}
        )
    mgr = Browser(world, "mgr_a")
    chart = _chart(mgr.get("/console/").text, "overdue")
    assert chart["names"] == ["rep_a1"]
    assert [s["values"] for s in chart["series"]] == [[2], [1]]
    report = world.client.get(
        "/v1/manager/reports/overdue-follow-ups", headers=world.phone("mgr_a").headers
    ).json()
    [rep] = report["reps"]
    assert (rep["overdue_tasks"], rep["overdue_follow_ups"]) == (2, 1)
    page = mgr.get("/console/reports/overdue").text
    assert re.search(r"<td>rep_a1</td><td>2</td><td>1</td>", page)
    assert mgr.client.get("/console/reports/overdue.csv").text.count("\n") == 4  # header + 3
