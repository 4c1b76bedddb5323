"""``python -m server.console.screenshots DIR`` — every console page, Chinese and English.

Builds a demo database (the demo team plus a conflict, a few phones and a hostile CSV
import so every page has something to show), serves it with uvicorn on a free loopback
port inside this process, signs in with a real headless Chromium (Debian's ``chromium``
through Playwright — a development dependency) and writes ``DIR/console-<page>[-en].png``
at a 1280×800 desktop size (the dashboard also at tablet size). ``make screenshots``
runs it after the app's screens.
"""

from __future__ import annotations

import socket
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
PASSWORD = "fieldsync-demo"

#: (file name, path) — the pages, in menu order.
PAGES: tuple[tuple[str, str], ...] = (
    ("dashboard", "/console/"),
    ("customers", "/console/customers"),
    ("customer", "/console/customers/demo-cust-0001"),
    ("customer-edit", "/console/customers/demo-cust-0001/edit"),
    ("leads", "/console/leads"),
    ("lead", "/console/leads/lead-shot"),
    ("pipeline", "/console/pipeline"),
    ("reassign", "/console/reassign?find=%E5%BC%A0"),
    ("conflicts", "/console/conflicts"),
    ("devices", "/console/devices"),
    ("device", "/console/devices/phone-shot"),
    ("device-wipe", "/console/devices/phone-shot/wipe"),
    ("users", "/console/users"),
    ("audit", "/console/audit"),
    ("reports", "/console/reports"),
    ("report", "/console/reports/performance"),
    ("import", "/console/import"),
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _demo_database(path: Path) -> str:
    from ..db import make_engine, make_session_factory
    from ..demo import seed_demo
    from ..migrate import upgrade

    url = f"sqlite:///{path}"
    upgrade(url)
    engine = make_engine(url)
    with make_session_factory(engine)() as session:
        seed_demo(session, customers=120)
    engine.dispose()
    return url


@contextmanager
def _serve(url: str) -> Iterator[str]:
    import uvicorn

    from ..app import create_app
    from ..settings import Settings

    port = _free_port()
    app = create_app(Settings(env="development", database_url=url))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _phone(
    base: str, username: str, name: str, device_id: str | None = None
) -> tuple[dict[str, str], str]:
    device_id = device_id or f"phone-{uuid.uuid4().hex[:8]}"
    body = {
        "username": username,
        "password": PASSWORD,
        "device_id": device_id,
        "device_name": name,
        "platform": "android",
        "app_version": "1.2.0",
    }
    tokens = httpx.post(f"{base}/v1/auth/login", json=body, timeout=30).json()
    return {"Authorization": f"Bearer {tokens['access_token']}"}, device_id


def _push(base: str, phone: tuple[dict[str, str], str], mutation: dict[str, Any]) -> Any:
    from sync_protocol import HybridLogicalClock

    headers, device_id = phone
    mutation = {
        "id": f"m-{uuid.uuid4().hex}",
        "op": "upsert",
        "hlc": HybridLogicalClock(device_id).now().encode(),
        **mutation,
    }
    body = {"device_id": device_id, "schema_version": 1, "mutations": [mutation]}
    return httpx.post(f"{base}/v1/sync/push", json=body, headers=headers, timeout=30).json()


def _stage_world(base: str) -> None:
    """A conflict to decide (two phones of rep2, who owns demo customer 1), a third
    phone (``phone-shot``) with a lead, on top of the demo."""
    a = _phone(base, "rep2", "华为 Mate 60")
    b = _phone(base, "rep2", "iPhone 15")
    c = _phone(base, "rep1", "小米 14", "phone-shot")
    lead = {"name": "王五", "company": "星辰科技", "phone": "13912345678", "source": "event"}
    _push(
        base,
        c,
        {
            "collection": "leads",
            "record_id": "lead-shot",
            "fields": {**lead, "status": "qualified"},
        },
    )
    fields = {"customer_id": "demo-cust-0001", "number": "HT-2026-088", "status": "draft"}
    first = _push(
        base,
        a,
        {
            "collection": "contracts",
            "record_id": "ct-shot",
            "fields": {**fields, "amount": 100000.0},
        },
    )
    version = first["results"][0]["version"]
    for phone, amount in ((a, 120000.0), (b, 110000.0)):
        _push(
            base,
            phone,
            {
                "collection": "contracts",
                "record_id": "ct-shot",
                "fields": {"amount": amount},
                "base_version": version,
                "base": {"amount": 100000.0},
            },
        )


def _sign_in(page: Any, base: str) -> None:
    page.goto(f"{base}/console/login")
    page.fill("#username", "manager")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/console/")


def _import_report(page: Any, base: str, lang: str) -> None:
    """Check a small GBK file with two bad rows, so the page shows its error report."""
    text = "姓名,状态,手机,邮箱\n张伟,意向客户,13800000001,zw@example.cn\n,潜在客户,13800000002,\n王芳,未知,abc,not-an-email\n"
    path = Path(tempfile.mkdtemp()) / ("客户.csv" if lang == "zh" else "customers.csv")
    path.write_bytes(text.encode("gbk"))
    page.set_input_files("#i-file", str(path))
    page.click("button[value=check]")
    page.wait_for_selector("#import-report")


def render_all(out_dir: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory() as tmp:
        url = _demo_database(Path(tmp) / "demo.db")
        with _serve(url) as base, sync_playwright() as pw:
            _stage_world(base)
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            for lang, locale, suffix in (("zh", "zh-CN", ""), ("en", "en-US", "-en")):
                context = browser.new_context(
                    locale=locale, viewport={"width": 1280, "height": 800}
                )
                page = context.new_page()
                page.goto(f"{base}/console/login")
                shot = out_dir / f"console-login{suffix}.png"
                page.screenshot(path=str(shot))
                written.append(shot)
                _sign_in(page, base)
                for name, path in PAGES:
                    page.goto(base + path)
                    if name == "import":
                        _import_report(page, base, lang)
                    page.wait_for_timeout(600)  # chart animations settle
                    shot = out_dir / f"console-{name}{suffix}.png"
                    page.screenshot(path=str(shot))
                    written.append(shot)
                page.set_viewport_size({"width": 820, "height": 1180})
                page.goto(f"{base}/console/")
                page.wait_for_timeout(600)
                shot = out_dir / f"console-dashboard-tablet{suffix}.png"
                page.screenshot(path=str(shot))
                written.append(shot)
                context.close()
            browser.close()
    return written


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0] if args else "docs/screenshots")
    for path in render_all(out):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
