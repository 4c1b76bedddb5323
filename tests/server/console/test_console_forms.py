"""The console's forms do what the manager API does, with its validation: editing a
customer (patch only, conflicts with a concurrent edit shown), creating a lead, moving a
deal, users (create, reset password, TOTP QR), CSV import from Chinese Excel (GBK,
Chinese headers and words) and CSV downloads Excel opens (BOM)."""

from __future__ import annotations

import csv
import io
import re

import pyotp
from sqlalchemy import select

from server.models import User
from tests.server.conftest import World
from tests.server.console.conftest import Browser


def test_edit_sends_only_changes_and_shows_api_errors(sqlite_world: World) -> None:
    world = sqlite_world
    phone = world.phone("rep_a1")
    v = phone.push_one("customers", "c-1", {"name": "张三", "status": "potential", "city": "上海"})[
        "version"
    ]
    mgr = Browser(world, "mgr_a")
    form = mgr.get("/console/customers/c-1/edit").text
    assert 'value="张三"' in form
    posted = {
        "name": "张三",
        "status": "intent",
        "city": "上海",
        "email": "",
        "base_version": str(v),
    }
    bad = mgr.post("/console/customers/c-1/edit", {**posted, "email": "not-an-email"})
    assert bad.status_code == 422 and "不是有效的邮箱地址" in bad.text
    assert 'aria-invalid="true"' in bad.text
    # Meanwhile the rep changes the city on the phone.
    phone.push_one("customers", "c-1", {"city": "杭州"}, base_version=v, base={"city": "上海"})
    stale = mgr.post("/console/customers/c-1/edit", posted)
    assert stale.status_code == 409 and "已被他人修改" in stale.text
    fresh = re.search(r'name="base_version" value="(\d+)"', stale.text)
    assert fresh is not None
    ok = mgr.post(
        "/console/customers/c-1/edit",
        {"name": "张三", "status": "intent", "city": "杭州", "base_version": fresh.group(1)},
    )
    assert ok.status_code == 303
    phone.sync_down()
    assert phone.records[("customers", "c-1")]["status"] == "intent"
    assert phone.records[("customers", "c-1")]["city"] == "杭州"  # the rep's edit is kept


def test_lead_and_pipeline_move(sqlite_world: World) -> None:
    world = sqlite_world
    phone = world.phone("rep_a1")
    phone.push_one("customers", "c-1", {"name": "客户", "status": "intent"})
    mgr = Browser(world, "mgr_a")
    admin_phone = world.phone("admin")
    admin_phone.push_one(
        "pipeline_stages", "s-1", {"name": "Lead", "name_zh": "线索", "position": 1}
    )
    admin_phone.push_one("pipeline_stages", "s-won", {"name": "Won", "position": 9, "is_won": True})
    phone.push_one(
        "opportunities",
        "o-1",
        {"customer_id": "c-1", "name": "大单", "stage_id": "s-1", "status": "open", "amount": 9.0},
    )
    assert mgr.post("/console/leads", {"name": "", "status": "new"}).status_code == 422
    assert (
        mgr.post("/console/leads", {"name": "新线索", "status": "new", "source": "web"}).status_code
        == 303
    )
    assert "新线索" in mgr.get("/console/leads").text
    board = mgr.get("/console/pipeline").text
    assert "大单" in board and "线索" in board
    assert mgr.post("/console/pipeline/o-1/move", {"stage_id": "s-won"}).status_code == 303
    changes = phone.sync_down()
    deal = phone.records[("opportunities", "o-1")]
    assert deal["stage_id"] == "s-won" and deal["status"] == "won" and deal["closed_at"]
    events = [c for c in changes if c["collection"] == "stage_changes"]
    assert events and events[0]["fields"]["to_stage_id"] == "s-won"


def test_users_create_reset_and_totp_qr(sqlite_world: World) -> None:
    world = sqlite_world
    mgr = Browser(world, "mgr_a")
    short = mgr.post("/console/users", {"username": "rep9", "password": "short"})
    assert short.status_code == 422 and 'aria-invalid="true"' in short.text
    assert (
        mgr.post(
            "/console/users",
            {"username": "rep9", "password": "a-long-password-9", "display_name": "小九"},
        ).status_code
        == 200
    )
    with world.context.sessions() as session:
        rep9 = session.scalar(select(User).where(User.username == "rep9"))
        assert rep9 is not None and rep9.team_id == "team-a" and rep9.role == "rep"
        rep9_id = rep9.id
    reset = mgr.post(f"/console/users/{rep9_id}/reset-password")
    password = re.search(r"（仅显示一次）：(\S+)</p>", reset.text)
    assert password is not None
    world.client.post(
        "/v1/auth/login",
        json={"username": "rep9", "password": password.group(1), "device_id": "d-9"},
    ).raise_for_status()
    enrol = mgr.post(f"/console/users/{rep9_id}/totp")
    assert 'src="data:image/svg+xml' in enrol.text  # the QR code, drawn by the server
    secret = re.search(r'<code id="totp-secret">([A-Z2-7]+)</code>', enrol.text)
    assert secret is not None
    login = {"username": "rep9", "password": password.group(1), "device_id": "d-9"}
    assert world.client.post("/v1/auth/login", json=login).status_code == 401  # now needs the code
    code = pyotp.TOTP(secret.group(1)).now()
    assert world.client.post("/v1/auth/login", json={**login, "totp": code}).status_code == 200
    # Deactivated: signed out everywhere and no new sign-in.
    assert mgr.post(f"/console/users/{rep9_id}/deactivate").status_code == 303
    code = pyotp.TOTP(secret.group(1)).now()
    assert world.client.post("/v1/auth/login", json={**login, "totp": code}).status_code in (
        401,
        403,
    )
    # Admins create teams (a manager may not: the scope matrix).
    admin = Browser(world, "admin")
    assert admin.post("/console/teams", {"name": "华南销售部"}).status_code == 303
    assert "华南销售部" in admin.get("/console/users").text


def test_import_from_chinese_excel_and_csv_downloads(sqlite_world: World) -> None:
    world = sqlite_world
    mgr = Browser(world, "mgr_a")
    text = "姓名,状态,手机,等级,标签\n张伟,意向客户,13800000001,高,VIP;重点\n,潜在客户,13800000002,低,\n王芳,未知,13800000003,中,\n"

    def upload(data: bytes, mode: str) -> str:
        response = mgr.client.post(
            "/console/import",
            data={"csrf_token": mgr.csrf, "collection": "customers", "mode": mode},
            files={"file": ("客户.csv", data, "text/csv")},
        )
        assert response.status_code == 200
        return response.text

    checked = upload(text.encode("gbk"), "check")
    assert "GB18030/GBK" in checked and "已检查 3 行：1 行可导入，2 行有错误" in checked
    rows = re.findall(r"<tr><td>(\d+)</td><td>([^<]+)</td>", checked)
    assert ("3", "姓名") in rows and ("4", "状态") in rows
    assert "张伟" not in mgr.get("/console/customers").text  # a check imports nothing
    imported = upload(b"\xef\xbb\xbf" + text.encode("utf-8"), "import")
    assert "UTF-8 (BOM)" in imported and "导入 1 行" in imported
    phone = world.phone("mgr_a")
    phone.sync_down()
    zhang = next(
        f for (c, _), f in phone.records.items() if c == "customers" and f["name"] == "张伟"
    )
    assert (
        zhang["status"] == "intent" and zhang["tier"] == "high" and zhang["tags"] == ["VIP", "重点"]
    )

    export = mgr.client.get("/console/customers/export.csv")
    assert export.content.startswith(b"\xef\xbb\xbf")
    header = next(csv.reader(io.StringIO(export.content.decode("utf-8-sig"))))
    assert header[:4] == ["id", "version", "owner_id", "name"]
    for name in ("funnel", "performance", "overdue"):
        report = mgr.client.get(f"/console/reports/{name}.csv")
        assert report.status_code == 200 and report.content.startswith(b"\xef\xbb\xbf"), name
    template = mgr.client.get("/console/import/template/customers.csv")
    assert template.content.decode("utf-8-sig").startswith("姓名,")


def test_move_a_reps_whole_book_after_a_preview(sqlite_world: World) -> None:
    world = sqlite_world
    a1 = world.phone("rep_a1")
    for cid in ("c-1", "c-2"):
        a1.push_one("customers", cid, {"name": f"客户{cid}", "status": "intent"})
    a1.push_one("contacts", "k-1", {"customer_id": "c-1", "name": "联系人"})
    a1.push_one("tasks", "t-1", {"customer_id": "c-1", "title": "回访", "status": "open"})
    a1.push_one("contacts", "k-2", {"customer_id": "c-2", "name": "联系人二"})
    world.phone("rep_a2").push_one("customers", "c-3", {"name": "别人的", "status": "intent"})
    a1.sync_down()
    mgr = Browser(world, "mgr_a")
    form = {"mode": "book", "from_owner": "u-rep_a1", "to_owner": "u-rep_a2"}
    preview = mgr.post("/console/reassign/preview", form)
    assert preview.status_code == 200
    assert "2 个客户及其 3 条关联记录" in preview.text and "别人的" not in preview.text
    phone_before = dict(a1.records)
    assert ("customers", "c-1") in phone_before  # nothing moved by the preview
    done = mgr.post("/console/reassign/apply", form)
    assert "已将 2 个客户（5 条记录）" in done.text
    a1.sync_down()
    assert not any(c == "customers" for c, _ in a1.records)


def test_moving_a_book_to_the_same_rep_is_refused_and_moves_nothing(sqlite_world: World) -> None:
    world = sqlite_world
    a1 = world.phone("rep_a1")
    a1.push_one("customers", "c-same", {"name": "留在原地", "status": "intent"})
    mgr = Browser(world, "mgr_a")
    form = {"mode": "book", "from_owner": "u-rep_a1", "to_owner": "u-rep_a1"}
    refused = mgr.post("/console/reassign/preview", form)
    assert refused.status_code == 422
    assert "请选择两位不同的代表" in refused.text
    assert "留在原地" not in refused.text  # no preview of the book
    a1.sync_down()
    assert ("customers", "c-same") in a1.records


def test_board_shows_each_stages_largest_deals(world: World) -> None:
    """On SQLite and PostgreSQL: an open stage shows its 20 largest open deals (count and
    value of all its open ones); a won stage its most recently closed."""
    admin = world.phone("admin")
    admin.push_one("pipeline_stages", "s-1", {"name": "Lead", "position": 1})
    admin.push_one("pipeline_stages", "s-won", {"name": "Won", "position": 9, "is_won": True})
    phone = world.phone("rep_a1")
    phone.push_one("customers", "c-1", {"name": "客户", "status": "intent"})
    deal = {"customer_id": "c-1", "stage_id": "s-1", "status": "open"}
    for i in range(1, 26):
        phone.push_one("opportunities", f"o-{i:02d}", {**deal, "name": f"d{i}", "amount": i * 1.0})
    lost = {**deal, "status": "lost", "amount": 1000.0, "closed_at": "2026-01-01T00:00:00Z"}
    phone.push_one("opportunities", "o-lost", {**lost, "name": "lost"})
    for day in (3, 1, 2):
        won = {**deal, "stage_id": "s-won", "status": "won", "amount": 7.0, "name": f"w{day}"}
        phone.push_one(
            "opportunities", f"o-w{day}", {**won, "closed_at": f"2026-02-0{day}T00:00:00Z"}
        )
    html = Browser(world, "mgr_a").get("/console/pipeline").text
    columns = {
        m.group(1): m.group(0)
        for m in re.finditer(
            r'<section class="column" aria-labelledby="col-([^"]+)">.*?</section>', html, re.S
        )
    }
    open_cards = re.findall(r'id="deal-([^"]+)"', columns["s-1"])
    assert open_cards == [f"o-{i:02d}" for i in range(25, 5, -1)]  # 20 largest, no lost deal
    assert "25 · ¥325" in columns["s-1"] or "25 · 325" in columns["s-1"], columns["s-1"][:300]
    assert re.findall(r'id="deal-([^"]+)"', columns["s-won"]) == ["o-w3", "o-w2", "o-w1"]


def test_audit_log_filters(sqlite_world: World) -> None:
    """Who did what: filter by person, action (``login.*``), entity and dates; a bare
    "until" date includes that day."""
    from datetime import UTC, datetime, timedelta

    world = sqlite_world
    rep = world.phone("rep_a1")  # a sign-in of rep_a1
    rep.push_one("customers", "c-1", {"name": "审计客户", "status": "intent"})
    mgr = Browser(world, "mgr_a")
    mgr.post(
        "/console/reassign/apply", {"mode": "one", "customer_id": "c-1", "to_owner": "u-rep_a2"}
    )
    world.phone("rep_b1")  # another team's sign-in: never on team A's page

    def actions(query: str) -> list[tuple[str, str]]:
        html = mgr.get(f"/console/audit?{query}").text
        rows = re.findall(r"<tr><td>[^<]*</td><td>([^<]*)</td><td>([^<]*)</td>", html)
        return [(who, what) for who, what in rows]

    everything = actions("")
    assert {w for _, w in everything} >= {"login.success", "admin.reassign"}, everything
    logins = actions("action=login.*")
    assert logins and all(w.startswith("login.") for _, w in logins)
    assert all(who != "rep_b1" and "rep_b1" not in who for who, _ in everything)
    by_rep = actions("user=u-rep_a1")
    assert {w for _, w in by_rep} == {"login.success", "mutation.applied"}
    assert {who for who, _ in by_rep} == {"rep_a1"}
    assert [w for _, w in actions("action=admin.reassign")] == ["admin.reassign"]
    today = datetime.now(UTC).date()
    assert len(actions(f"since={today}&until={today}")) == len(everything)
    assert actions(f"until={today - timedelta(days=1)}") == []
    assert actions(f"since={today + timedelta(days=1)}") == []
