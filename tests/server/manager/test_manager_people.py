"""Users, teams, devices and the audit log through the manager API (SQLite: the SQL is
plain ORM, the same on both databases)."""

from __future__ import annotations

import pyotp

from tests.server.conftest import World
from tests.server.manager.conftest import Web


def _login(world: World, username: str, password: str, **extra: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    response = world.client.post(
        "/v1/auth/login",
        json={"username": username, "password": password, "device_id": f"dev-{username}", **extra},
    )
    return response.status_code, response.json()


def test_user_lifecycle(sqlite_world: World) -> None:
    world = sqlite_world
    mgr = Web(world, "mgr_a")
    response = mgr.post(
        "/v1/manager/users",
        json={"username": "rep_a3", "password": "a-long-secret-1", "display_name": "新人"},
    )
    assert response.status_code == 201, response.text
    user = response.json()
    assert (user["role"], user["team_id"], user["active"]) == ("rep", "team-a", True)
    assert _login(world, "rep_a3", "a-long-secret-1")[0] == 200

    # Managers create reps of their own team only; usernames are unique.
    assert (
        mgr.post(
            "/v1/manager/users",
            json={"username": "boss", "password": "a-long-secret-1", "role": "manager"},
        ).status_code
        == 403
    )
    assert (
        mgr.post(
            "/v1/manager/users", json={"username": "rep_a3", "password": "a-long-secret-1"}
        ).status_code
        == 409
    )
    users = mgr.get("/v1/manager/users").json()
    assert {u["username"] for u in users["items"]} == {"mgr_a", "rep_a1", "rep_a2", "rep_a3"}

    edited = mgr.patch(f"/v1/manager/users/{user['id']}", json={"display_name": "新人甲"}).json()
    assert edited["display_name"] == "新人甲"
    assert (
        mgr.patch(f"/v1/manager/users/{user['id']}", json={"role": "manager"}).status_code == 403
    )  # roles are an admin's decision

    reset = mgr.post(f"/v1/manager/users/{user['id']}/reset-password", json={}).json()
    temporary = reset["temporary_password"]
    assert temporary and _login(world, "rep_a3", "a-long-secret-1")[0] == 401
    assert _login(world, "rep_a3", temporary)[0] == 200

    enrol = mgr.post(f"/v1/manager/users/{user['id']}/totp").json()
    assert enrol["otpauth_uri"].startswith("otpauth://totp/Fieldsync:rep_a3?secret=")
    status, body = _login(world, "rep_a3", temporary)
    assert (status, body["error"]["code"]) == (401, "totp_required")
    code = pyotp.TOTP(enrol["secret"]).now()
    assert _login(world, "rep_a3", temporary, totp=code)[0] == 200
    assert mgr.get(f"/v1/manager/users/{user['id']}").json()["totp_enabled"] is True
    assert mgr.delete(f"/v1/manager/users/{user['id']}/totp").json()["totp_enabled"] is False

    gone = mgr.post(f"/v1/manager/users/{user['id']}/deactivate").json()
    assert gone["active"] is False
    assert _login(world, "rep_a3", temporary)[0] == 401
    assert mgr.post(f"/v1/manager/users/{mgr.user_id}/deactivate").status_code == 403

    # Another team's people are invisible; reps may not use the API at all.
    assert mgr.get(f"/v1/manager/users/{world.users['rep_b1']}").status_code == 404
    assert Web(world, "rep_a1").get("/v1/manager/users").status_code == 403


def test_teams(sqlite_world: World) -> None:
    world = sqlite_world
    mgr, admin = Web(world, "mgr_a"), Web(world, "admin")
    assert [t["id"] for t in mgr.get("/v1/manager/teams").json()] == ["team-a"]
    assert mgr.get("/v1/manager/teams").json()[0]["members"] == 3
    assert len(admin.get("/v1/manager/teams").json()) == 2
    assert mgr.post("/v1/admin/teams", json={"name": "West"}).status_code == 403
    team = admin.post("/v1/admin/teams", json={"name": "West"}).json()
    assert admin.post("/v1/admin/teams", json={"name": "West"}).status_code == 409
    moved = admin.patch(
        f"/v1/manager/users/{world.users['rep_b1']}", json={"team_id": team["id"]}
    ).json()
    assert moved["team_id"] == team["id"]
    renamed = admin.patch(
        f"/v1/admin/teams/{team['id']}", json={"name": "West 2", "manager_id": world.users["mgr_b"]}
    ).json()
    assert (renamed["name"], renamed["manager_id"], renamed["members"]) == (
        "West 2",
        world.users["mgr_b"],
        1,
    )


def test_devices_revoke_wipe_and_audit(sqlite_world: World) -> None:
    world = sqlite_world
    mgr = Web(world, "mgr_a")
    phone = world.phone("rep_a1", device_id="dev-pixel")
    pushed = phone.push_raw(
        [phone.mutation("customers", "c-1", {"name": "A", "status": "intent"})], pending_total=7
    )
    assert pushed.status_code == 200
    devices = mgr.get("/v1/manager/devices", params={"user_id": world.users["rep_a1"]}).json()
    [device] = devices["items"]
    assert (device["id"], device["pending_writes"], device["protocol"]) == ("dev-pixel", 6, 1)
    assert device["last_seen"] is not None and device["revoked_at"] is None
    # Team B's devices are not listed for mgr_a.
    world.phone("rep_b1", device_id="dev-b")
    assert "dev-b" not in {d["id"] for d in mgr.get("/v1/manager/devices").json()["items"]}

    assert mgr.post("/v1/manager/devices/dev-pixel/revoke").json()["wipe"] is False
    refused = phone.pull_raw()
    assert refused.status_code == 403
    assert refused.json()["error"] == {
        "code": "device_revoked",
        "message": refused.json()["error"]["message"],
        "details": {"wipe": False},
    }
    other = world.phone("rep_a2", device_id="dev-lost")
    assert mgr.post("/v1/manager/devices/dev-lost/wipe").json()["wipe"] is True
    assert other.pull_raw().json()["error"]["details"] == {"wipe": True}
    assert mgr.post("/v1/manager/devices/dev-b/wipe").status_code == 404
    assert mgr.post(f"/v1/manager/devices/{mgr.phone.device_id}/revoke").status_code == 403

    def actions(**params: str) -> list[str]:
        page = mgr.get("/v1/manager/audit", params=params).json()
        return [e["action"] for e in page["items"]]

    assert actions(device_id="dev-pixel") == ["mutation.applied", "login.success"]
    assert actions(entity="customers") == ["mutation.applied"]
    assert actions(entity="devices") == ["device.wipe", "device.revoke"]
    assert actions(action="device.*") == ["device.wipe", "device.revoke"]
    assert actions(user_id=world.users["rep_a2"]) == ["login.success"]
    assert actions(until="2000-01-01T00:00:00Z") == []
    assert "login.success" in actions(since="2000-01-01T00:00:00Z")
    # Team B's logins are not in mgr_a's log; an admin sees them.
    assert actions(user_id=world.users["rep_b1"]) == []
    assert (
        Web(world, "admin")
        .get("/v1/manager/audit", params={"user_id": world.users["rep_b1"]})
        .json()["total"]
        == 1
    )
    page = mgr.get("/v1/manager/audit", params={"limit": 2, "offset": 1}).json()
    assert page["total"] > 3 and len(page["items"]) == 2
