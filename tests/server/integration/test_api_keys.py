"""API keys for systems and the change feed: hashed, scoped to a role and team,
read-only or read-write, revocable, audited; the feed pages like pull — SQLite and
PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select, text

from server.integration.models import ApiKey
from server.models import AuditEntry
from tests.server.conftest import World, customer_fields, new_id
from tests.server.manager.conftest import Web


def _key(admin: Web, **body: Any) -> dict[str, Any]:
    made = admin.post(
        "/v1/integration/keys", json={"name": "ERP", "role": "manager", "team_id": "team-a", **body}
    )
    assert made.status_code == 201, made.text
    out: dict[str, Any] = made.json()
    return out


def _as(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_a_team_key_reads_and_writes_its_team_only(world: World) -> None:
    admin = Web(world, "admin")
    made = _key(admin, access="write")
    key = made["key"]
    assert key.startswith("fsk_") and made["role"] == "manager" and made["team_id"] == "team-a"
    client = world.client
    mine, theirs = new_id("c"), new_id("c")
    world.phone("rep_a1").push_one("customers", mine, customer_fields("甲方"))
    world.phone("rep_b1").push_one("customers", theirs, customer_fields("乙方"))

    listed = client.get("/v1/manager/records/customers", headers=_as(key), params={"limit": 1000})
    assert listed.status_code == 200, listed.text
    ids = {r["id"] for r in listed.json()["items"]}
    assert mine in ids and theirs not in ids
    assert (
        client.get(f"/v1/manager/records/customers/{theirs}", headers=_as(key)).status_code == 404
    )

    # a write: owned by the key's service account, seen by the team's manager
    created = client.post(
        "/v1/manager/records/customers",
        headers=_as(key),
        json={"fields": customer_fields("系统导入的客户")},
    )
    assert created.status_code == 201, created.text
    assert created.json()["owner_id"] == made["user_id"]
    seen = Web(world, "mgr_a").get(f"/v1/manager/records/customers/{created.json()['id']}")
    assert seen.status_code == 200
    # ... and placed with a rep of the team, not outside it
    placed = client.post(
        "/v1/manager/records/leads",
        headers=_as(key),
        json={"fields": {"name": "ERP 线索", "status": "new"}, "owner_id": world.users["rep_a2"]},
    )
    assert placed.status_code == 201, placed.text
    outside = client.post(
        "/v1/manager/records/leads",
        headers=_as(key),
        json={"fields": {"name": "越界", "status": "new"}, "owner_id": world.users["rep_b1"]},
    )
    assert outside.status_code == 403
    # a key is no admin: it cannot make keys or webhooks
    assert (
        client.post(
            "/v1/integration/keys", headers=_as(key), json={"name": "x", "role": "admin"}
        ).status_code
        == 403
    )


def test_a_read_key_only_reads(world: World) -> None:
    key = _key(Web(world, "admin"))["key"]  # access defaults to read
    client = world.client
    assert client.get("/v1/manager/records/customers", headers=_as(key)).status_code == 200
    refused = client.post(
        "/v1/manager/records/customers", headers=_as(key), json={"fields": customer_fields()}
    )
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "forbidden")


def test_keys_are_hashed_revocable_and_audited(world: World) -> None:
    admin = Web(world, "admin")
    made = _key(admin, name="财务系统", access="write")
    key, key_id = made["key"], made["id"]
    client = world.client
    assert client.get("/v1/manager/records/customers", headers=_as(key)).status_code == 200
    with world.context.sessions() as s:
        row = s.get(ApiKey, key_id)
        assert row is not None and row.key_hash != key and len(row.key_hash) == 64
        assert row.last_used_at_ms is not None
        dump = json.dumps([list(r) for r in s.execute(text("SELECT * FROM api_keys"))])
        audit = json.dumps(
            [list(r) for r in s.execute(select(AuditEntry.target, AuditEntry.details))]
        )
        assert key.split("_", 2)[2] not in dump + audit  # the secret is stored nowhere
    listed = {k["id"]: k for k in admin.get("/v1/integration/keys").json()}
    assert "key" not in listed[key_id] and listed[key_id]["revoked_at_ms"] is None

    # the service account has no password to sign in with
    login = client.post(
        "/v1/auth/login",
        json={"username": made["user_id"], "password": "", "device_id": "dev-svc-try"},
    )
    assert login.status_code in (401, 422)

    revoked = admin.delete(f"/v1/integration/keys/{key_id}")
    assert revoked.status_code == 200 and revoked.json()["revoked_at_ms"]
    after = client.get("/v1/manager/records/customers", headers=_as(key))
    assert (after.status_code, after.json()["error"]["code"]) == (401, "unauthorized")
    forged = key[:-4] + ("aaaa" if not key.endswith("aaaa") else "bbbb")
    assert client.get("/v1/manager/records/customers", headers=_as(forged)).status_code == 401
    assert client.get("/v1/manager/records/customers", headers=_as("fsk_bad")).status_code == 401
    with world.context.sessions() as s:
        actions = [
            a
            for (a,) in s.execute(
                select(AuditEntry.action).where(AuditEntry.target == key_id).order_by(AuditEntry.id)
            )
        ]
    assert actions[0] == "apikey.create" and actions[-1] == "apikey.revoke"
    assert "apikey.use" in actions


def test_only_admins_manage_keys_and_bad_input_is_refused(world: World) -> None:
    admin, mgr = Web(world, "admin"), Web(world, "mgr_a")
    body = {"name": "x", "role": "manager", "team_id": "team-a"}
    assert mgr.post("/v1/integration/keys", json=body).status_code == 403
    assert mgr.get("/v1/integration/keys").status_code == 403
    assert (
        world.phone("rep_a1")
        .world.client.get("/v1/integration/keys", headers=world.phone("rep_a1").headers)
        .status_code
        == 403
    )
    assert (
        admin.post("/v1/integration/keys", json={**body, "team_id": "team-zz"}).status_code == 404
    )
    assert admin.post("/v1/integration/keys", json={**body, "role": "rep"}).status_code == 422
    assert admin.post("/v1/integration/keys", json={**body, "role": "admin"}).status_code == 403
    assert admin.delete("/v1/integration/keys/0123456789abcdef").status_code == 404
    before = len(admin.get("/v1/integration/keys").json())
    admin.post("/v1/integration/keys", json={**body, "access": "all"})
    assert len(admin.get("/v1/integration/keys").json()) == before  # nothing half-made


def _feed(world: World, key: str, checkpoint: str | None, limit: int) -> dict[str, Any]:
    params: dict[str, Any] = {"limit": limit}
    if checkpoint:
        params["checkpoint"] = checkpoint
    response = world.client.get("/v1/integration/changes", headers=_as(key), params=params)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


def test_the_change_feed_pages_like_pull_and_follows_scope(world: World) -> None:
    admin = Web(world, "admin")
    key = _key(admin)["key"]
    rep_a, rep_b = world.phone("rep_a1"), world.phone("rep_b1")
    for i in range(3):
        rep_a.push_one("customers", new_id("c"), customer_fields(f"翻页{i}"))
    other = new_id("c")
    rep_b.push_one("customers", other, customer_fields("别队"))
    seen: dict[str, dict[str, Any]] = {}
    checkpoint, pages = None, 0
    while True:
        page = _feed(world, key, checkpoint, 2)
        pages += 1
        for c in page["changes"]:
            seen[c["record_id"]] = c
        checkpoint = page["checkpoint"]
        if not page["has_more"]:
            break
    assert pages >= 2 and other not in seen
    # later changes only, from the cursor: an edit, a deletion, an eviction
    moved, gone = new_id("c"), new_id("c")
    rep_a.push_one("customers", moved, customer_fields("将转走"))
    rep_a.push_one("customers", gone, customer_fields("将删除"))
    first = _feed(world, key, checkpoint, 500)
    assert {c["record_id"] for c in first["changes"]} == {moved, gone}
    checkpoint = first["checkpoint"]
    v = {c["record_id"]: c["version"] for c in first["changes"]}
    assert rep_a.push_one("customers", gone, op="delete", base_version=v[gone])["status"] in (
        "applied",
        "merged",
    )
    out = admin.post(
        "/v1/manager/customers/reassign",
        json={"customer_ids": [moved], "new_owner_id": world.users["rep_b1"]},
    )
    assert out.status_code == 200, out.text
    later = _feed(world, key, checkpoint, 500)
    ops = {(c["record_id"], c["op"]) for c in later["changes"]}
    assert ops == {(gone, "delete"), (moved, "evict")}
    assert _feed(world, key, later["checkpoint"], 500)["changes"] == []
    bad = world.client.get(
        "/v1/integration/changes", headers=_as(key), params={"checkpoint": "nonsense"}
    )
    assert bad.status_code in (400, 410, 422)
    rep = world.client.get("/v1/integration/changes", headers=rep_a.headers)
    assert rep.status_code == 403
