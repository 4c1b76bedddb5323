"""Sign-in, tokens, TOTP, rate limits, revoked devices, production rules."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pyotp
import pytest
from pydantic import ValidationError
from sqlalchemy import select

from server.accounts import create_user, revoke_device
from server.models import AuditEntry, RefreshToken
from server.settings import DEMO_PASSWORD, Settings
from tests.server.conftest import World, build_world, customer_fields, new_id, password_of


def _login(world: World, name: str, password: str | None = None, **extra: Any) -> httpx.Response:
    body = {
        "username": name,
        "password": password if password is not None else password_of(name),
        "device_id": extra.pop("device_id", f"dev-login-{name}"),
        **extra,
    }
    return world.client.post("/v1/auth/login", json=body)


def test_login_registers_device_and_audits(sqlite_world: World) -> None:
    ok = _login(sqlite_world, "rep_a1", device_name="Pixel 7", platform="android")
    assert ok.status_code == 200
    body = ok.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 900
    assert body["user"]["role"] == "rep" and body["user"]["team_id"] == "team-a"
    bad = _login(sqlite_world, "rep_a1", "wrong-password")
    assert bad.status_code == 401
    assert bad.json()["error"]["code"] == "unauthorized"
    with sqlite_world.context.sessions() as s:
        actions = list(s.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
        details = " ".join(filter(None, s.scalars(select(AuditEntry.details))))
    assert actions == ["login.success", "login.failure"]
    assert "wrong-password" not in details


def test_refresh_rotates_and_reuse_revokes_the_device(sqlite_world: World) -> None:
    phone = sqlite_world.phone("rep_a1")
    first = phone.tokens["refresh_token"]
    rotated = sqlite_world.client.post(
        "/v1/auth/refresh", json={"refresh_token": first, "device_id": phone.device_id}
    )
    assert rotated.status_code == 200
    second = rotated.json()["refresh_token"]
    assert second != first
    replay = sqlite_world.client.post(
        "/v1/auth/refresh", json={"refresh_token": first, "device_id": phone.device_id}
    )
    assert replay.status_code == 401
    # The replay of a used token cut the device's whole token family off.
    after = sqlite_world.client.post(
        "/v1/auth/refresh", json={"refresh_token": second, "device_id": phone.device_id}
    )
    assert after.status_code == 401
    with sqlite_world.context.sessions() as s:
        hashes = list(s.scalars(select(RefreshToken.token_hash)))
    assert first not in hashes and second not in hashes  # stored hashed only


def test_expired_access_token_then_refresh_resumes_from_same_checkpoint(
    sqlite_world: World,
) -> None:
    writer = sqlite_world.phone("rep_a1")
    writer.push([writer.mutation("customers", f"c-{i}", customer_fields()) for i in range(3)])
    phone = sqlite_world.phone("rep_a1")
    phone.sync_down(limit=2)
    checkpoint = phone.checkpoint
    signer = sqlite_world.context.signer
    phone.tokens["access_token"] = signer.issue(
        sqlite_world.users["rep_a1"], phone.device_id, now=time.time() - 3600
    )
    expired = phone.pull_raw(checkpoint)
    assert expired.status_code == 401
    assert expired.json()["error"]["code"] == "token_expired"
    refreshed = sqlite_world.client.post(
        "/v1/auth/refresh",
        json={"refresh_token": phone.tokens["refresh_token"], "device_id": phone.device_id},
    )
    assert refreshed.status_code == 200
    phone.tokens = refreshed.json()
    writer.push_one("customers", "c-late", customer_fields())
    changes = phone.sync_down()
    assert [c["record_id"] for c in changes] == ["c-late"]
    assert phone.checkpoint != checkpoint


def test_tampered_or_missing_token_is_unauthorized(sqlite_world: World) -> None:
    phone = sqlite_world.phone("rep_a1")
    token = phone.tokens["access_token"]
    phone.tokens["access_token"] = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    assert phone.pull_raw().json()["error"]["code"] == "unauthorized"
    response = sqlite_world.client.post(
        "/v1/sync/pull", json={"device_id": "x", "schema_version": 1}
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_totp_required_wrong_and_right(sqlite_world: World) -> None:
    secret = pyotp.random_base32()
    with sqlite_world.context.sessions() as s:
        create_user(s, username="totp_rep", password="totp-password-1", totp_secret=secret)
        s.commit()
    missing = _login(sqlite_world, "totp_rep", "totp-password-1")
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "totp_required"
    wrong_code = "000000" if pyotp.TOTP(secret).now() != "000000" else "111111"
    wrong = _login(sqlite_world, "totp_rep", "totp-password-1", totp=wrong_code)
    assert wrong.json()["error"]["code"] == "unauthorized"
    right = _login(sqlite_world, "totp_rep", "totp-password-1", totp=pyotp.TOTP(secret).now())
    assert right.status_code == 200


@pytest.fixture
def strict_world(sqlite_url: str) -> Iterator[World]:
    world, client = build_world(
        sqlite_url, login_max_failures_per_user=3, login_max_attempts_per_address=7
    )
    with client:
        yield world
    world.context.engine.dispose()


def test_login_rate_limited_per_user_and_per_address(strict_world: World) -> None:
    for _ in range(3):
        assert _login(strict_world, "rep_a1", "nope").status_code == 401
    limited = _login(strict_world, "rep_a1")  # even the right password waits now
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
    assert int(limited.headers["retry-after"]) >= 1
    # Other accounts still work from this address until the address limit: 7 tries,
    # the refused one included.
    assert _login(strict_world, "rep_a2").status_code == 200
    for name in ("mgr_a", "rep_b1"):
        assert _login(strict_world, name).status_code == 200
    address_limited = _login(strict_world, "admin")
    assert address_limited.status_code == 429
    assert "address" in address_limited.json()["error"]["message"]


def test_revoked_device_is_refused_with_wipe_on_every_request(sqlite_world: World) -> None:
    phone = sqlite_world.phone("rep_a1")
    phone.push_one("customers", new_id("c"), customer_fields())
    with sqlite_world.context.sessions() as s:
        revoke_device(s, phone.device_id, wipe=True)
        s.commit()
    expected = {"code": "device_revoked", "wipe": True}
    for response in (
        phone.pull_raw(),
        phone.push_raw([phone.mutation("customers", new_id("c"), customer_fields())]),
        sqlite_world.client.post(
            "/v1/auth/refresh",
            json={"refresh_token": phone.tokens["refresh_token"], "device_id": phone.device_id},
        ),
        _login(sqlite_world, "rep_a1", device_id=phone.device_id),
    ):
        assert response.status_code == 403
        error = response.json()["error"]
        assert {"code": error["code"], "wipe": error["details"]["wipe"]} == expected
    # The same account on another device is unaffected.
    assert sqlite_world.phone("rep_a1").pull_raw().status_code == 200


def test_demo_password_refused_in_production(sqlite_url: str) -> None:
    world, client = build_world(sqlite_url, env="production")
    with client, world.context.sessions() as s:
        create_user(s, username="demo_user", password=DEMO_PASSWORD)
        s.commit()
        response = _login(world, "demo_user", DEMO_PASSWORD)
        assert response.status_code == 401
        assert "demo password" in response.json()["error"]["message"]
        assert _login(world, "rep_a1").status_code == 200
    world.context.engine.dispose()


def test_production_refuses_the_default_secret() -> None:
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        Settings(env="production")
    assert Settings(env="production", secret_key="a-real-private-key-123").is_production
    assert Settings(env="development").secret_key  # the default is fine in development


def test_logout_revokes_refresh_tokens(sqlite_world: World) -> None:
    phone = sqlite_world.phone("rep_a1")
    assert sqlite_world.client.post("/v1/auth/logout", headers=phone.headers).status_code == 204
    again = sqlite_world.client.post(
        "/v1/auth/refresh",
        json={"refresh_token": phone.tokens["refresh_token"], "device_id": phone.device_id},
    )
    assert again.status_code == 401
