"""Done-when 1 of the console, in a real headless Chromium against a real server process:
sign in with TOTP, see the dashboard's charts drawn, find 张三 by ``zs``, reassign a
customer and see the rep's device receive the eviction on its next sync, resolve a
conflict, revoke a device, download a CSV."""

from __future__ import annotations

import uuid
from typing import Any

import pyotp

from tests.console.conftest import MANAGER_TOTP, Device, next_code, sign_in
from tests.support.server_proc import ServerProcess


def test_sign_in_needs_the_one_time_code(server: ServerProcess, browser: Any) -> None:
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    page.goto(f"{server.url}/console/customers")
    assert "/console/login" in page.url  # not signed in: the sign-in page, not JSON
    page.fill("#username", "manager")
    page.fill("#password", "fieldsync-demo")
    page.click("button[type=submit]")
    page.wait_for_url("**/console/login/code**")
    wrong = "000000" if pyotp.TOTP(MANAGER_TOTP).now() != "000000" else "111111"
    page.fill("#code", wrong)
    page.click("button[type=submit]")
    assert page.locator("[role=alert]").inner_text() == "Wrong one-time code."
    cookies = {c["name"]: c for c in context.cookies()}
    assert "fs_console" not in cookies
    page.fill("#code", next_code())
    page.click("button[type=submit]")
    page.wait_for_url("**/console/customers")  # back where the manager wanted to go
    session = {c["name"]: c for c in context.cookies()}["fs_console"]
    assert session["httpOnly"] and session["sameSite"] == "Lax"
    page.click("text=Sign out")
    page.wait_for_url("**/console/login")
    page.goto(f"{server.url}/console/")
    assert "/console/login" in page.url
    context.close()


def test_dashboard_draws_its_charts(manager_page: Any, server: ServerProcess) -> None:
    page = manager_page
    page.goto(f"{server.url}/console/")
    page.wait_for_selector("[data-chart][data-drawn=true]")
    drawn = page.evaluate(
        """() => Array.from(document.querySelectorAll('[data-chart]')).map(el => {
            const chart = window.echarts.getInstanceByDom(el);
            const canvas = el.querySelector('canvas');
            return {id: el.id, series: chart ? chart.getOption().series.length : 0,
                    width: canvas ? canvas.width : 0,
                    painted: canvas ? canvas.toDataURL().length : 0};
        })"""
    )
    ids = {d["id"] for d in drawn}
    assert ids == {"chart-funnel", "chart-targets", "chart-week", "chart-overdue", "chart-tickets"}
    for chart in drawn:
        assert chart["series"] >= 1 and chart["width"] > 100, chart
        assert chart["painted"] > 3000, chart  # pixels were drawn, not a blank canvas
    assert page.locator("h1").inner_text() == "团队概览"
    assert page.js_errors == []


def test_find_zhangsan_by_initials(manager_page: Any, server: ServerProcess) -> None:
    rep = Device(server, "rep1")
    company = f"测试{uuid.uuid4().hex[:6]}"  # nothing in it spells zs
    rep.push(
        "customers",
        f"c-zs-{uuid.uuid4().hex[:8]}",
        {"name": "张三", "company": company, "status": "intent"},
    )
    page = manager_page
    page.goto(f"{server.url}/console/customers")
    everyone = page.locator("#results tbody tr").count()
    page.fill("#q", "zs")  # typing searches (htmx), and the address follows the search
    page.wait_for_url("**/console/customers?q=zs**")
    rows = page.locator("#results tbody tr")
    assert page.locator(f"#results tr:has-text('{company}') td a").inner_text() == "张三"
    assert 0 < rows.count() < everyone
    page.fill("#q", "zhangsan")
    page.wait_for_url("**q=zhangsan**")
    assert page.locator(f"#results tr:has-text('{company}')").count() == 1


def test_reassign_reaches_the_reps_device(manager_page: Any, server: ServerProcess) -> None:
    rep1 = Device(server, "rep1")
    customer = f"c-move-{uuid.uuid4().hex[:8]}"
    rep1.push("customers", customer, {"name": "迁移客户", "status": "intent"})
    rep1.push("contacts", f"k-{customer}", {"customer_id": customer, "name": "联系人甲"})
    rep1.pull()  # the phone is up to date, with the customer on it
    page = manager_page
    page.goto(f"{server.url}/console/customers/{customer}")
    page.click("main a.button:text-is('转移')")
    page.select_option("#one-to", label="Sarah Wang 王莎")
    page.click("button:text('预览')")
    preview = page.locator("#preview-text").inner_text()
    assert "1 个客户及其 1 条关联记录" in preview
    page.click("button:text('确认转移')")
    assert "已将 1 个客户" in page.locator("[role=status]").inner_text()
    evicted = {(c["collection"], c["record_id"]) for c in rep1.pull() if c["op"] == "evict"}
    assert {("customers", customer), ("contacts", f"k-{customer}")} <= evicted
    rep2 = Device(server, "rep2")
    assert ("customers", customer) in {(c["collection"], c["record_id"]) for c in rep2.pull()}


def test_resolve_a_conflict(manager_page: Any, server: ServerProcess) -> None:
    a, b = Device(server, "rep1"), Device(server, "rep1")
    customer, contract = f"c-cf-{uuid.uuid4().hex[:8]}", f"ct-{uuid.uuid4().hex[:8]}"
    a.push("customers", customer, {"name": "冲突客户", "status": "intent"})
    fields = {"customer_id": customer, "number": "HT-9", "status": "draft", "amount": 100.0}
    version = a.push("contracts", contract, fields)["version"]
    a.push("contracts", contract, {"amount": 200.0}, base_version=version, base={"amount": 100.0})
    result = b.push(
        "contracts", contract, {"amount": 300.0}, base_version=version, base={"amount": 100.0}
    )
    assert result["status"] == "conflict"
    conflict_id = result["conflict_ids"][0]

    page = manager_page
    page.goto(f"{server.url}/console/conflicts")
    card = page.locator(f"#cf-{conflict_id}")
    assert "300" in card.inner_text() and "200" in card.inner_text()
    card.locator("input[value=value]").check()
    card.locator("input[name=value]").fill("250")
    card.locator("button[type=submit]").click()
    assert "已裁决" in page.locator("[role=status]").inner_text()
    assert page.locator(f"#cf-{conflict_id}").count() == 0
    state = {(c["collection"], c["record_id"]): c for c in b.pull()}
    assert state[("contracts", contract)]["fields"]["amount"] == 250.0
    assert state[("_conflicts", conflict_id)]["fields"]["status"] == "resolved"


def test_revoke_a_device(manager_page: Any, server: ServerProcess) -> None:
    phone = Device(server, "rep2", device_id=f"lost-{uuid.uuid4().hex[:8]}")
    phone.pull()
    page = manager_page
    page.goto(f"{server.url}/console/devices")
    page.locator(f"#dev-{phone.device_id} a:text('吊销')").click()
    assert "未同步的内容仍可在手机上查看" in page.locator("main").inner_text()  # says what it does
    page.click("button:text('吊销')")
    assert "已吊销" in page.locator("[role=status]").inner_text()
    response = phone.pull_raw()
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "device_revoked" and error["details"]["wipe"] is False


def test_download_customers_csv(manager_page: Any, server: ServerProcess, tmp_path: Any) -> None:
    page = manager_page
    page.goto(f"{server.url}/console/customers?status=intent")
    with page.expect_download() as info:
        page.click("text=导出 CSV")
    path = tmp_path / "customers.csv"
    info.value.save_as(path)
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")  # Excel reads it as UTF-8
    text = data.decode("utf-8-sig")
    header, *rows = text.splitlines()
    assert header.startswith("id,version,owner_id,name")
    assert rows and all(",intent," in row or "intent" in row for row in rows)


def test_switch_language(browser: Any, server: ServerProcess) -> None:
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    sign_in(page, server.url, "admin")
    assert page.locator("nav.side a[aria-current=page]").inner_text() == "Dashboard"
    page.click("text=中文")
    assert page.locator("nav.side a[aria-current=page]").inner_text() == "仪表盘"
    context.close()


#: Pages with forms, checked for labels, keyboard reach and the tablet width.
A11Y_PAGES = (
    "/console/",
    "/console/customers",
    "/console/customers/demo-cust-0001",
    "/console/customers/demo-cust-0001/edit",
    "/console/leads",
    "/console/pipeline",
    "/console/reassign",
    "/console/conflicts",
    "/console/devices",
    "/console/users",
    "/console/audit",
    "/console/reports/performance",
    "/console/import",
)


def test_labelled_keyboard_reachable_and_fits_a_tablet(
    manager_page: Any, server: ServerProcess
) -> None:
    """Every visible form field has a label (or an accessible name); the first Tab lands
    on the skip link, which moves focus to the page's content; at a tablet's 820 px the
    page has no sideways scrolling."""
    page = manager_page
    page.set_viewport_size({"width": 820, "height": 1180})
    try:
        for path in A11Y_PAGES:
            page.goto(f"{server.url}{path}")
            unlabelled = page.evaluate(
                """() => Array.from(document.querySelectorAll('input, select, textarea'))
                    .filter(el => el.type !== 'hidden' && el.offsetParent !== null)
                    .filter(el => !(el.labels && el.labels.length) &&
                                  !el.getAttribute('aria-label') &&
                                  !el.getAttribute('aria-labelledby'))
                    .map(el => el.outerHTML.slice(0, 120))"""
            )
            assert unlabelled == [], (path, unlabelled)
            sideways = page.evaluate(
                "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert sideways <= 0, (path, sideways)
            page.keyboard.press("Tab")
            assert page.evaluate("() => document.activeElement.className") == "skip", path
        page.keyboard.press("Enter")
        assert page.evaluate("() => location.hash") == "#main"
    finally:
        page.set_viewport_size({"width": 1280, "height": 720})
