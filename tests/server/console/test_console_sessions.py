"""Console sessions: cookie attributes, sign-out, idle and absolute expiry, and every
API revocation rule ending a browser session too (they share the refresh-token rows)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update

from server.models import Device, RefreshToken
from tests.server.conftest import World
from tests.server.console.conftest import Browser


def _signed_in(browser: Browser) -> bool:
    response = browser.client.get("/console/", follow_redirects=False)
    return response.status_code == 200


def _browser_device(browser: Browser) -> str:
    device = browser.client.cookies.get("fs_browser")
    assert device and device.startswith("web-")
    return device


def test_cookie_is_httponly_lax_and_secure_over_tls(sqlite_world: World) -> None:
    mgr = Browser(sqlite_world, "mgr_a")
    assert mgr.client.cookies.get("fs_console")
    tls = TestClient(sqlite_world.client.app, base_url="https://testserver")
    page = tls.get("/console/login")
    token = page.cookies.get("fs_login_csrf")
    response = tls.post(
        "/console/login",
        data={"username": "mgr_a", "password": "pw-mgr_a-secret", "login_token": token},
        follow_redirects=False,
    )
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("fs_console="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" in cookie
    plain = mgr.client.post(  # over plain HTTP the cookie cannot be Secure (it would be lost)
        "/console/logout", data={"csrf_token": mgr.csrf}, follow_redirects=False
    )
    assert plain.status_code == 303


def test_sign_out_ends_only_this_session(sqlite_world: World) -> None:
    first, second = Browser(sqlite_world, "mgr_a"), Browser(sqlite_world, "mgr_a")
    stolen = first.client.cookies.get("fs_console")
    assert first.post("/console/logout").status_code == 303
    assert not _signed_in(first)
    copy = TestClient(sqlite_world.client.app)
    copy.cookies.set("fs_console", stolen or "")
    assert copy.get("/console/", follow_redirects=False).status_code == 303  # replay refused
    assert _signed_in(second)


def test_idle_and_absolute_expiry(sqlite_world: World) -> None:
    idle, old = Browser(sqlite_world, "mgr_a"), Browser(sqlite_world, "admin")
    long_ago = datetime.now(UTC) - timedelta(hours=2)  # idle timeout: 1 h by default
    with sqlite_world.context.sessions() as session:
        session.execute(
            update(Device).where(Device.id == _browser_device(idle)).values(last_seen=long_ago)
        )
        session.execute(
            update(RefreshToken)
            .where(RefreshToken.device_id == _browser_device(old))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        session.commit()
    for browser in (idle, old):
        response = browser.client.get("/console/customers", follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/console/login?next=%2Fconsole%2Fcustomers")
    # An htmx request is told to go to the sign-in page instead of swapping it in.
    response = idle.client.get("/console/customers", headers={"HX-Request": "true"})
    assert response.status_code == 204 and response.headers["HX-Redirect"].startswith(
        "/console/login"
    )


def test_api_revocations_end_console_sessions(sqlite_world: World) -> None:
    world = sqlite_world
    admin = Browser(world, "admin")
    mgr = Browser(world, "mgr_a")
    device = _browser_device(mgr)
    # The browser is one of the manager's devices: revoking it signs the browser out.
    assert admin.post(f"/console/devices/{device}/revoke").status_code == 303
    assert not _signed_in(mgr)
    # Signing in again from that browser gets a fresh device (the revoked one stays revoked).
    again = mgr.sign_in("mgr_a", "pw-mgr_a-secret")
    assert again.status_code == 200 and _browser_device(mgr) != device
    # A password reset (here by the admin) signs the person out everywhere.
    assert admin.post("/console/users/u-mgr_a/reset-password").status_code == 200
    assert not _signed_in(mgr)


def test_reps_and_wrong_passwords_get_no_session(sqlite_world: World) -> None:
    client = TestClient(sqlite_world.client.app)
    for username, password, status in (
        ("rep_a1", "pw-rep_a1-secret", 403),
        ("mgr_a", "wrong password", 401),
        ("nobody", "whatever-password", 401),
    ):
        token = client.get("/console/login").cookies.get("fs_login_csrf") or client.cookies.get(
            "fs_login_csrf"
        )
        response = client.post(
            "/console/login",
            data={"username": username, "password": password, "login_token": token},
            follow_redirects=False,
        )
        assert response.status_code == status, (username, response.status_code)
        assert "fs_console" not in client.cookies
    # No open redirect after sign-in: only console paths are followed.
    token = client.cookies.get("fs_login_csrf")
    response = client.post(
        "/console/login",
        data={
            "username": "mgr_a",
            "password": "pw-mgr_a-secret",
            "login_token": token,
            "next": "//evil.example/console",
        },
        follow_redirects=False,
    )
    assert response.headers["location"] == "/console/"
