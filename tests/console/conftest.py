"""Browser tests of the console: a real server process and a real headless Chromium.

One server (SQLite file, demo data) and one browser for the whole package keep the
wall time modest; each test opens its own browser context (cookies) or shares the
module's signed-in manager tab. Chromium is Debian's ``chromium`` package (``make deps`` installs it), driven by
Playwright's Python API with ``executable_path`` — never ``playwright install``. Tests
are marked ``browser``: a skipped one fails the run under ``CI=true``.

``device(...)`` is a rep's phone speaking the sync protocol over HTTP, to watch what a
console action does to a device (an eviction, a revocation).
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest

from sync_protocol import HybridLogicalClock
from tests.support.server_proc import ServerProcess

#: Debian's chromium; the CI rule test points this elsewhere to prove a skip fails CI.
CHROMIUM = os.environ.get("FIELDSYNC_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
MANAGER_TOTP = pyotp.random_base32()
DEMO_PASSWORD = "fieldsync-demo"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.browser)


def launch_browser() -> Any:
    """(playwright, browser) or skip (which fails the run under CI=true)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (make deps)")
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium; make deps does it)")
    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    return playwright, browser


def enrol_manager_totp(db_url: str, username: str, secret: str) -> None:
    from sqlalchemy import update

    from server.db import make_engine, make_session_factory
    from server.models import User

    engine = make_engine(db_url)
    try:
        with make_session_factory(engine)() as session:
            session.execute(
                update(User).where(User.username == username).values(totp_secret=secret)
            )
            session.commit()
    finally:
        engine.dispose()


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    db = tmp_path_factory.mktemp("console") / "fieldsync.db"
    url = f"sqlite:///{db}"
    proc = ServerProcess(url, seed_demo=True, demo_customers=60)
    proc.prepare()
    enrol_manager_totp(url, "manager", MANAGER_TOTP)
    with proc:
        yield proc


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    playwright, browser = launch_browser()
    try:
        yield browser
    finally:
        browser.close()
        playwright.stop()


_last_counter = [0]


def next_code() -> str:
    """A one-time code not used before (a server may refuse a code twice): the current
    time step's, else the next one's (accepted as clock drift), else wait for a step."""
    totp = pyotp.TOTP(MANAGER_TOTP)
    while True:
        now = int(time.time())
        counter = max(now // 30, _last_counter[0] + 1)
        if counter <= now // 30 + 1:
            _last_counter[0] = counter
            return str(totp.at(counter * 30))
        time.sleep(1)


def sign_in(page: Any, base: str, username: str = "manager") -> None:
    """Password, then (for the manager, who has TOTP) the one-time code."""
    page.goto(f"{base}/")
    page.fill("#username", username)
    page.fill("#password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    if username == "manager":
        page.wait_for_url("**/console/login/code**")
        page.fill("#code", next_code())
        page.click("button[type=submit]")
    page.wait_for_url(f"{base}/console/")


@pytest.fixture(scope="module")
def manager_page(server: ServerProcess, browser: Any) -> Iterator[Any]:
    """One signed-in browser tab shared by the module's tests (Chinese locale)."""
    context = browser.new_context(locale="zh-CN", accept_downloads=True)
    page = context.new_page()
    # Waits are on conditions and end as soon as they hold; the ceiling allows for a
    # loaded 2-core CI machine.
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, server.url)
    page.js_errors = errors
    yield page
    context.close()


class Device:
    """A rep's phone over HTTP: sign in, push, pull with a checkpoint."""

    def __init__(self, server: ServerProcess, username: str, device_id: str | None = None) -> None:
        self.url = server.url
        self.device_id = device_id or f"phone-{uuid.uuid4().hex[:10]}"
        tokens = server.login(username, DEMO_PASSWORD, device_id=self.device_id)
        self.headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        self.checkpoint: str | None = None
        self.clock = HybridLogicalClock(self.device_id)

    def push(
        self, collection: str, record_id: str, fields: dict[str, Any], **extra: Any
    ) -> dict[str, Any]:
        hlc = self.clock.now().encode()
        mutation = {
            "id": f"m-{uuid.uuid4().hex}",
            "collection": collection,
            "record_id": record_id,
            "op": "upsert",
            "fields": fields,
            "hlc": hlc,
            **extra,
        }
        body = {"device_id": self.device_id, "schema_version": 1, "mutations": [mutation]}
        response = httpx.post(
            f"{self.url}/v1/sync/push", json=body, headers=self.headers, timeout=30
        )
        response.raise_for_status()
        result: dict[str, Any] = response.json()["results"][0]
        return result

    def pull_raw(self) -> httpx.Response:
        body = {
            "device_id": self.device_id,
            "schema_version": 1,
            "checkpoint": self.checkpoint,
            "limit": 5000,
        }
        return httpx.post(f"{self.url}/v1/sync/pull", json=body, headers=self.headers, timeout=30)

    def pull(self) -> list[dict[str, Any]]:
        changes: list[dict[str, Any]] = []
        while True:
            response = self.pull_raw()
            response.raise_for_status()
            page = response.json()
            changes.extend(page["changes"])
            self.checkpoint = page["checkpoint"]
            if not page["has_more"]:
                return changes
