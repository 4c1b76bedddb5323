"""Done-when 3 of the console: ``/docs`` works offline, and its Authorize button works
with a token from ``/v1/auth/login``. Every request the page makes is watched: any to a
host other than the server is blocked and fails the test (no CDN)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from tests.console.conftest import DEMO_PASSWORD
from tests.support.server_proc import ServerProcess


def _offline(context: Any, server: ServerProcess) -> list[str]:
    """Block (and remember) every request that leaves the server."""
    outside: list[str] = []
    local = urlsplit(server.url).netloc

    def route(route: Any) -> None:
        url = route.request.url
        if url.startswith(("data:", "blob:")) or urlsplit(url).netloc == local:
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    context.route("**/*", route)
    return outside


def test_docs_offline_and_authorize_with_a_login_token(server: ServerProcess, browser: Any) -> None:
    context = browser.new_context(locale="en-US")
    outside = _offline(context, server)
    page = context.new_page()
    # Every wait below is on a condition and returns as soon as it holds; the limit is
    # generous because Swagger UI parses a 1.5 MB bundle and renders the whole API
    # before its title appears, which on a loaded 2-core machine can take many seconds.
    page.set_default_timeout(60_000)
    with page.expect_response(lambda r: r.url.endswith("/docs/openapi.json")) as spec:
        page.goto(f"{server.url}/docs")
    assert spec.value.ok  # the explorer read the document with the bearer scheme
    page.wait_for_selector(".swagger-ui .info .title")
    page.wait_for_selector(".opblock-summary-path[data-path='/v1/manager/devices']")
    assert "Fieldsync" in page.locator(".swagger-ui .info .title").inner_text()

    token = server.login("admin", DEMO_PASSWORD, device_id="docs-browser")["access_token"]
    page.click("button.authorize")
    page.fill(".modal-ux input[type=text]", token)
    page.click(".modal-ux .auth-btn-wrapper button.authorize")
    page.click(".modal-ux button.btn-done")

    block = page.locator(".opblock-get:has(.opblock-summary-path[data-path='/v1/manager/devices'])")
    block.locator(".opblock-summary").click()
    block.locator("button.try-out__btn").click()
    block.locator("button.execute").click()
    status = block.locator(".live-responses-table tbody .response-col_status").first
    status.wait_for()
    assert status.inner_text().strip().startswith("200")
    assert "Bearer fs1." in block.locator(".curl-command").inner_text()
    assert outside == []
    context.close()


def test_console_pages_load_nothing_from_elsewhere(server: ServerProcess, browser: Any) -> None:
    from tests.console.conftest import sign_in

    context = browser.new_context(locale="zh-CN")
    outside = _offline(context, server)
    page = context.new_page()
    sign_in(page, server.url, "admin")
    for path in ("/console/", "/console/customers", "/console/reports/funnel", "/console/users"):
        page.goto(f"{server.url}{path}")
        page.wait_for_load_state("networkidle")
    assert outside == []
    context.close()
