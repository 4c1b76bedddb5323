"""Done-when 2 of the console: a manager of one team can neither see nor change another
team's data through any console page or form; a hostile customer name renders as text;
a form posted without its CSRF token is refused.

Team B (mgr_b, rep_b1) owns a customer with a contact, a deal, an activity, a lead, a
conflict and a phone; team A's manager (mgr_a) signs in to the console and tries every
page and every form against them.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import pytest

from server.models import Device, User
from tests.server.conftest import World
from tests.server.console.conftest import Browser

B_NAME = "乙队秘密客户"
B_LEAD = "乙队秘密线索"
B_DEAL = "乙队秘密商机"


def _team_b(world: World) -> dict[str, Any]:
    """Team B's data, made by rep_b1's two phones (the second one makes a conflict)."""
    phone, other = world.phone("rep_b1"), world.phone("rep_b1")
    # stages are reference data written by managers and admins (the deal must name one)
    world.phone("admin").push_one("pipeline_stages", "st-1", {"name": "Lead", "position": 1})
    phone.push_one("customers", "c-b", {"name": B_NAME, "status": "intent", "phone": "13900000009"})
    phone.push_one("contacts", "k-b", {"customer_id": "c-b", "name": "乙队联系人"})
    phone.push_one("leads", "l-b", {"name": B_LEAD, "status": "new"})
    deal = {
        "customer_id": "c-b",
        "name": B_DEAL,
        "stage_id": "st-1",
        "status": "open",
        "amount": 5.0,
    }
    phone.push_one("opportunities", "o-b", deal)
    phone.push_one(
        "activities",
        "a-b",
        {"customer_id": "c-b", "type": "visit", "occurred_at": "2026-01-05T10:00:00+00:00"},
    )
    contract = {"customer_id": "c-b", "number": "HT-B", "status": "draft", "amount": 100.0}
    v = phone.push_one("contracts", "ct-b", contract)["version"]
    phone.push_one("contracts", "ct-b", {"amount": 200.0}, base_version=v, base={"amount": 100.0})
    result = other.push_one(
        "contracts", "ct-b", {"amount": 300.0}, base_version=v, base={"amount": 100.0}
    )
    assert result["status"] == "conflict"
    return {"conflict": result["conflict_ids"][0], "device": phone.device_id}


@pytest.fixture
def setup(sqlite_world: World) -> tuple[World, Browser, dict[str, Any]]:
    world = sqlite_world
    b = _team_b(world)
    a1 = world.phone("rep_a1")
    a1.push_one("customers", "c-a", {"name": "甲队客户", "status": "intent"})
    a1.push_one("leads", "l-a", {"name": "甲队线索", "status": "new"})
    return world, Browser(world, "mgr_a"), b


def _no_b(html: str, b: dict[str, Any], path: str = "") -> None:
    """No trace of team B in the page (the page's own address, echoed in the language
    switch link, is not data)."""
    if path:
        html = html.replace(quote(path, safe="/"), "").replace(path, "")
        for _key, value in parse_qsl(urlsplit(path).query):
            html = html.replace(value, "")  # the manager's own query, echoed in links
    for marker in (
        B_NAME,
        B_LEAD,
        B_DEAL,
        "乙队联系人",
        "c-b",
        "o-b",
        "l-b",
        b["conflict"],
        b["device"],
        "rep_b1",
        "u-rep_b1",
    ):
        assert marker not in html, marker


PAGES = [
    "/console/",
    "/console/customers",
    "/console/customers?q=%E4%B9%99",
    "/console/customers?owner=u-rep_b1",
    "/console/customers/export.csv",
    "/console/leads",
    "/console/leads?q=%E4%B9%99",
    "/console/leads?owner=u-rep_b1",
    "/console/leads/l-a",
    "/console/pipeline",
    "/console/reassign",
    "/console/reassign?find=%E4%B9%99",
    "/console/conflicts",
    "/console/devices",
    "/console/users",
    "/console/audit",
    "/console/audit?user=u-rep_b1",
    "/console/audit?entity=customers",
    *[
        f"/console/reports/{r}"
        for r in ("funnel", "performance", "leads", "campaigns", "tickets", "contracts", "overdue")
    ],
    *[
        f"/console/reports/{r}.csv"
        for r in ("funnel", "performance", "leads", "campaigns", "tickets", "contracts", "overdue")
    ],
]


def test_other_teams_data_is_on_no_page(setup: tuple[World, Browser, dict[str, Any]]) -> None:
    world, mgr, b = setup
    for path in PAGES:
        response = mgr.get(path)
        assert response.status_code == 200, (path, response.text[:300])
        _no_b(response.text, b, path)
    # The control: team A's own customer is there, so the pages do show data.
    assert "甲队客户" in mgr.get("/console/customers").text
    # Team B's manager does see it (the data exists and the pages work).
    assert B_NAME in Browser(world, "mgr_b").get("/console/customers").text


def test_other_teams_records_answer_404(setup: tuple[World, Browser, dict[str, Any]]) -> None:
    _world, mgr, b = setup
    for path in (
        "/console/customers/c-b",
        "/console/customers/c-b/edit",
        "/console/leads/l-b",
        f"/console/devices/{b['device']}",
        f"/console/devices/{b['device']}/revoke",
        f"/console/devices/{b['device']}/wipe",
        "/console/reassign?customer=c-b",
        "/console/users?deactivate=u-rep_b1",
    ):
        response = mgr.get(path)
        assert response.status_code == 404, (path, response.status_code)
        _no_b(response.text, b, path)


def _unchanged(world: World, b: dict[str, Any]) -> None:
    """Team B's data exactly as team B left it."""
    phone = world.phone("rep_b1")
    phone.sync_down()
    assert phone.records[("customers", "c-b")]["name"] == B_NAME
    assert phone.records[("leads", "l-b")]["status"] == "new"
    assert not [k for k in phone.records if k[0] == "leads" and k[1] != "l-b"]  # none given
    assert not [k for k in phone.records if k[0] == "contacts" and k[1] != "k-b"]
    assert phone.records[("opportunities", "o-b")]["stage_id"] == "st-1"
    assert phone.records[("contracts", "ct-b")]["amount"] == 200.0
    assert phone.records[("_conflicts", b["conflict"])]["status"] == "open"
    with world.context.sessions() as session:
        user = session.get(User, "u-rep_b1")
        assert user is not None and user.active and user.totp_secret is None
        device = session.get(Device, b["device"])
        assert device is not None and device.revoked_at is None


def test_no_form_changes_other_teams_data(setup: tuple[World, Browser, dict[str, Any]]) -> None:
    world, mgr, b = setup
    forms: list[tuple[str, dict[str, Any]]] = [
        (
            "/console/customers/c-b/edit",
            {"name": "被改了", "status": "closed", "base_version": "1"},
        ),
        ("/console/pipeline/o-b/move", {"stage_id": "st-1"}),
        ("/console/leads/l-b/convert", {"contact": "on"}),
        ("/console/leads/l-b/convert", {"existing_customer_id": "c-a"}),
        ("/console/leads/l-a/convert", {"contact": "on", "existing_customer_id": "c-b"}),
        ("/console/leads", {"name": "越权线索", "status": "new", "owner_id": "u-rep_b1"}),
        ("/console/leads/l-b/assign", {"to": "u-rep_a1"}),
        ("/console/leads/l-a/assign", {"to": "u-rep_b1"}),
        ("/console/leads/assign", {"lead_id": "l-b", "to": "u-rep_a1"}),
        ("/console/leads/assign", {"lead_id": "l-b", "to": "round_robin"}),
        ("/console/leads/assign", {"lead_id": ["l-a"], "to": "u-rep_b1"}),
        (f"/console/conflicts/{b['conflict']}/resolve", {"choice": "local"}),
        (f"/console/devices/{b['device']}/revoke", {}),
        (f"/console/devices/{b['device']}/wipe", {}),
        ("/console/users/u-rep_b1/deactivate", {}),
        ("/console/users/u-rep_b1/reset-password", {}),
        ("/console/users/u-rep_b1/totp", {}),
        ("/console/teams", {"name": "越权团队"}),  # only admins create teams
        (
            "/console/reassign/preview",
            {"mode": "one", "customer_id": "c-b", "to_owner": "u-rep_a1"},
        ),
        (
            "/console/reassign/preview",
            {"mode": "book", "from_owner": "u-rep_b1", "to_owner": "u-rep_a1"},
        ),
        ("/console/reassign/apply", {"mode": "one", "customer_id": "c-b", "to_owner": "u-rep_a1"}),
        (
            "/console/reassign/apply",
            {"mode": "book", "from_owner": "u-rep_b1", "to_owner": "u-rep_a1"},
        ),
        ("/console/reassign/apply", {"mode": "one", "customer_id": "c-a", "to_owner": "u-rep_b1"}),
    ]
    for path, data in forms:
        response = mgr.post(path, data)
        assert response.status_code in (403, 404), (path, response.status_code, response.text[:300])
        _no_b(response.text, b, path)
    # A user created by team A's manager lands in team A whatever the form says.
    mgr.post(
        "/console/users",
        {"username": "newrep", "password": "a-long-password-1", "team_id": "team-b"},
    )
    with world.context.sessions() as session:
        created = session.query(User).filter_by(username="newrep").one_or_none()
        assert created is None or created.team_id == "team-a"
    # An import cannot give a customer to team B's rep.
    csv = "name,status,owner_id\n越权客户,intent,u-rep_b1\n".encode()
    response = mgr.client.post(
        "/console/import",
        data={"csrf_token": mgr.csrf, "collection": "customers", "mode": "import"},
        files={"file": ("x.csv", csv, "text/csv")},
    )
    assert response.status_code == 200
    assert "越权客户" not in Browser(world, "mgr_b").get("/console/customers").text
    _unchanged(world, b)
    own = world.phone("rep_a1")
    own.sync_down()
    assert own.records[("leads", "l-a")]["status"] == "new"  # not converted into c-b
    assert own.records[("leads", "l-a")]["owner_id"] == "u-rep_a1"  # not given to team B


def test_hostile_name_renders_as_text(sqlite_world: World) -> None:
    world = sqlite_world
    evil = "<script>alert(1)</script>"
    world.phone("rep_a1").push_one(
        "customers",
        "c-x",
        {"name": evil, "status": "intent", "tags": ['"><img src=x onerror=alert(2)>']},
    )
    mgr = Browser(world, "mgr_a")
    for path in (
        "/console/customers",
        "/console/customers/c-x",
        "/console/customers/c-x/edit",
        "/console/reassign?find=script",
    ):
        html = mgr.get(path).text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, path
        assert evil not in html and "<img src=x" not in html, path
    # Every page forbids inline script outright.
    csp = mgr.get("/console/customers").headers["content-security-policy"]
    assert (
        "script-src 'self'" in csp
        and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    )


def test_forms_without_the_csrf_token_are_refused(sqlite_world: World) -> None:
    world = sqlite_world
    world.phone("rep_a1").push_one("customers", "c-1", {"name": "张三", "status": "potential"})
    mgr = Browser(world, "mgr_a")
    other = Browser(world, "admin")
    edit = {"name": "李四", "status": "potential", "base_version": "1"}
    assert mgr.post("/console/customers/c-1/edit", edit, csrf=False).status_code == 403
    wrong = {**edit, "csrf_token": other.csrf}
    assert mgr.post("/console/customers/c-1/edit", wrong, csrf=False).status_code == 403
    assert mgr.post("/console/logout", csrf=False).status_code == 403
    phone = world.phone("rep_a1")
    phone.sync_down()
    assert phone.records[("customers", "c-1")]["name"] == "张三"
    # With the token the same form works (the control), through the API's validation.
    assert mgr.post("/console/customers/c-1/edit", edit).status_code == 303
    phone.sync_down()
    assert phone.records[("customers", "c-1")]["name"] == "李四"
    # The sign-in form has its own token too (login CSRF).
    fresh = Browser.__new__(Browser)
    fresh.client = type(mgr.client)(world.client.app)
    response = fresh.client.post(
        "/console/login", data={"username": "mgr_a", "password": "pw-mgr_a-secret"}
    )
    assert response.status_code == 403
    assert re.search(r"fs_console=", response.headers.get("set-cookie", "")) is None
