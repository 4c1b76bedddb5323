"""Reassignment moves a customer's records between devices; purged tombstones force a
resync. On SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import select

from server.models import AuditEntry
from server.repository import purge_tombstones
from tests.server.conftest import World, customer_fields, new_id


def _customer_with_children(world: World, owner: str) -> tuple[str, set[tuple[str, str]]]:
    phone = world.phone(owner)
    cid = new_id("c")
    phone.push_one("customers", cid, customer_fields("李娜"))
    contact, visit = new_id("ct"), new_id("a")
    phone.push(
        [
            phone.mutation("contacts", contact, {"customer_id": cid, "name": "王伟"}),
            phone.mutation(
                "activities",
                visit,
                {"customer_id": cid, "type": "call", "occurred_at": "2026-11-20T09:00:00Z"},
            ),
        ]
    )
    return cid, {("customers", cid), ("contacts", contact), ("activities", visit)}


def test_reassign_evicts_from_old_rep_and_delivers_to_new(world: World) -> None:
    cid, keys = _customer_with_children(world, "rep_a1")
    old, new, manager = world.phone("rep_a1"), world.phone("rep_a2"), world.phone("mgr_a")
    for p in (old, new, manager):
        p.sync_down()
    assert keys <= set(old.records) and manager.records.keys() >= keys
    assert not keys & set(new.records)

    response = world.client.post(
        "/v1/admin/customers/reassign",
        json={"customer_ids": [cid], "new_owner_id": world.users["rep_a2"]},
        headers=manager.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["moved_records"] == 3
    assert response.json()["evicted_users"] == [world.users["rep_a1"]]

    evicted = old.sync_down()
    assert {(c["collection"], c["record_id"]) for c in evicted if c["op"] == "evict"} == keys
    assert not keys & set(old.records)
    new.sync_down()
    assert keys <= set(new.records)
    assert new.records[("customers", cid)]["owner_id"] == world.users["rep_a2"]
    manager.sync_down()
    assert keys <= set(manager.records)  # same team: the manager keeps them
    # The new owner can now edit, the old one cannot.
    contact = next(r for c, r in keys if c == "contacts")
    version = new.versions[("contacts", contact)]
    assert (
        new.push_one("contacts", contact, {"title": "CEO"}, base_version=version)["status"]
        == "applied"
    )
    refused = old.push_one("contacts", contact, {"title": "CTO"}, base_version=version)
    assert refused["error"]["code"] == "forbidden"
    with world.context.sessions() as s:
        assert "admin.reassign" in set(s.scalars(select(AuditEntry.action)))


def test_reassign_across_teams_evicts_the_old_manager_and_rules_who_may(world: World) -> None:
    cid, keys = _customer_with_children(world, "rep_a1")
    mgr_a, mgr_b, rep = world.phone("mgr_a"), world.phone("mgr_b"), world.phone("rep_a1")
    for p in (mgr_a, mgr_b):
        p.sync_down()
    body = {"customer_ids": [cid], "new_owner_id": world.users["rep_b1"]}
    # A rep may not reassign; a manager may not hand over to another team.
    assert (
        world.client.post(
            "/v1/admin/customers/reassign", json=body, headers=rep.headers
        ).status_code
        == 403
    )
    assert (
        world.client.post(
            "/v1/admin/customers/reassign", json=body, headers=mgr_a.headers
        ).status_code
        == 403
    )
    admin = world.phone("admin")
    moved = world.client.post("/v1/admin/customers/reassign", json=body, headers=admin.headers)
    assert moved.status_code == 200
    assert sorted(moved.json()["evicted_users"]) == sorted(
        [world.users["rep_a1"], world.users["mgr_a"]]
    )
    mgr_a.sync_down()
    assert not keys & set(mgr_a.records)
    mgr_b.sync_down()
    assert keys <= set(mgr_b.records)


def test_checkpoint_older_than_purge_horizon_gets_410_resync_required(world: World) -> None:
    phone = world.phone("rep_a1")
    cid = new_id("c")
    v = phone.push_one("customers", cid, customer_fields())["version"]
    stale = world.phone("rep_a1")
    stale.sync_down()
    old_checkpoint = stale.checkpoint
    phone.push_one("customers", cid, op="delete", base_version=v)
    keep_id = new_id("c")
    phone.push_one("customers", keep_id, customer_fields("keep"))
    fresh = world.phone("rep_a1")
    fresh.sync_down()
    with world.context.sessions() as s:
        result = purge_tombstones(s.connection(), older_than_ms=2**62, now_ms=0)
        s.commit()
    assert result.tombstones == 1
    gone = stale.pull_raw(old_checkpoint)
    assert gone.status_code == 410
    assert gone.json()["error"]["code"] == "resync_required"
    # A device that already saw the deletion carries on; a resync from scratch works.
    assert fresh.pull_raw(fresh.checkpoint).status_code == 200
    again = world.phone("rep_a1")
    again.sync_down()
    assert list(again.records) == [("customers", keep_id)]
