"""Who a session belongs to and how it ends (issue 12, defects 2, 5, 6 and 10).

* A device id is bound to the user who registered it: another user presenting it is
  refused (``device_id_taken``), and the owner stays signed in.
* Logout, password reset, deactivation and revocation end every access token at once
  (token generations), not when the token expires.
* A TOTP code works once.
* Revoking a device does not order a wipe; wiping is a separate, explicit order.
* A device silent for longer than the offline lease cannot refresh: it must sign in.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pyotp
from sqlalchemy import select

from server.accounts import create_user, utcnow
from server.models import AuditEntry, Device
from tests.server.conftest import World, build_world, customer_fields, new_id, password_of
from tests.server.manager.conftest import Web


def _login(world: World, name: str, device_id: str, **extra: Any) -> httpx.Response:
    body = {"username": name, "password": password_of(name), "device_id": device_id, **extra}
    return world.client.post("/v1/auth/login", json=body)


def _pull_status(world: World, headers: dict[str, str], device_id: str) -> int:
    body = {"device_id": device_id, "schema_version": 1, "checkpoint": None}
    return world.client.post("/v1/sync/pull", json=body, headers=headers).status_code


def test_another_user_cannot_take_a_device_over(sqlite_world: World) -> None:
    manager = sqlite_world.phone("mgr_a", device_id="dev-manager-laptop")
    taken = _login(sqlite_world, "rep_a1", "dev-manager-laptop")
    assert taken.status_code == 409
    assert taken.json()["error"]["code"] == "device_id_taken"
    # The owner is still signed in, and the device is still theirs.
    assert manager.pull_raw().status_code == 200
    with sqlite_world.context.sessions() as s:
        device = s.get(Device, "dev-manager-laptop")
        assert device is not None and device.user_id == sqlite_world.users["mgr_a"]
        attempt = s.scalars(
            select(AuditEntry).where(AuditEntry.action == "login.device_id_taken")
        ).one()
    assert attempt.user_id == sqlite_world.users["rep_a1"]
    # The same user signing in again on their own device is fine.
    assert _login(sqlite_world, "mgr_a", "dev-manager-laptop").status_code == 200


def test_logout_ends_the_access_token_at_once(sqlite_world: World) -> None:
    phone = sqlite_world.phone("rep_a1")
    other = sqlite_world.phone("rep_a1")
    assert sqlite_world.client.post("/v1/auth/logout", headers=phone.headers).status_code == 204
    assert phone.pull_raw().status_code == 401
    assert phone.pull_raw().json()["error"]["code"] == "unauthorized"
    assert other.pull_raw().status_code == 200  # only that device signed out
    phone.login()  # signing in again issues a token of the new generation
    assert phone.pull_raw().status_code == 200


def test_password_reset_and_deactivation_end_every_token_at_once(sqlite_world: World) -> None:
    mgr = Web(sqlite_world, "mgr_a")
    phones = [sqlite_world.phone("rep_a1"), sqlite_world.phone("rep_a1")]
    bystander = sqlite_world.phone("rep_a2")
    reset = mgr.post(f"/v1/manager/users/{sqlite_world.users['rep_a1']}/reset-password", json={})
    assert reset.status_code == 200, reset.text
    assert [p.pull_raw().status_code for p in phones] == [401, 401]
    assert bystander.pull_raw().status_code == 200
    for phone in phones:
        refreshed = sqlite_world.client.post(
            "/v1/auth/refresh",
            json={"refresh_token": phone.tokens["refresh_token"], "device_id": phone.device_id},
        )
        assert refreshed.status_code == 401
    assert (
        mgr.post(f"/v1/manager/users/{sqlite_world.users['rep_a2']}/deactivate").status_code == 200
    )
    assert bystander.pull_raw().status_code == 401


def test_revoke_keeps_work_and_wipe_is_a_separate_order(sqlite_world: World) -> None:
    mgr = Web(sqlite_world, "mgr_a")
    phone = sqlite_world.phone("rep_a1")
    revoked = mgr.post(f"/v1/manager/devices/{phone.device_id}/revoke")
    assert revoked.status_code == 200 and revoked.json()["wipe"] is False
    answer = phone.push_raw([phone.mutation("customers", new_id("c"), customer_fields())])
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "device_revoked"
    assert answer.json()["error"]["details"] == {"wipe": False}
    # Wiping a revoked device later is its own order.
    wiped = mgr.post(f"/v1/manager/devices/{phone.device_id}/wipe")
    assert wiped.status_code == 200 and wiped.json()["wipe"] is True
    assert phone.pull_raw().json()["error"]["details"] == {"wipe": True}
    # Revoking again never takes the wipe order back.
    assert mgr.post(f"/v1/manager/devices/{phone.device_id}/revoke").json()["wipe"] is True


def test_a_totp_code_works_once(sqlite_world: World) -> None:
    secret = pyotp.random_base32()
    with sqlite_world.context.sessions() as s:
        create_user(s, username="otp_rep", password=password_of("otp_rep"), totp_secret=secret)
        s.commit()
    code = pyotp.TOTP(secret).now()
    first = _login(sqlite_world, "otp_rep", "dev-otp-1", totp=code)
    assert first.status_code == 200, first.text
    replay = _login(sqlite_world, "otp_rep", "dev-otp-2", totp=code)
    assert replay.status_code == 401
    assert "already used" in replay.json()["error"]["message"]


def test_a_device_offline_past_the_lease_must_sign_in_again(sqlite_url: str) -> None:
    world, client = build_world(sqlite_url, offline_lease_days=7)
    with client:
        assert client.get("/v1/sync/info").json()["limits"]["offline_lease_days"] == 7
        phone = world.phone("rep_a1")
        with world.context.sessions() as s:
            device = s.get(Device, phone.device_id)
            assert device is not None
            device.last_seen = utcnow() - timedelta(days=8)
            s.commit()
        refreshed = client.post(
            "/v1/auth/refresh",
            json={"refresh_token": phone.tokens["refresh_token"], "device_id": phone.device_id},
        )
        assert refreshed.status_code == 401
        assert refreshed.json()["error"]["code"] == "lease_expired"
        phone.login()  # the password opens it again
        assert phone.pull_raw().status_code == 200
    world.context.engine.dispose()
