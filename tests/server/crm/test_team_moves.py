"""Team moves re-scope devices: when a rep or a manager changes team, the phones that no
longer may hold records get evictions and the phones that now may get them on their
next pull — SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from tests.server.conftest import World, customer_fields, new_id
from tests.server.manager.conftest import Web


def _ops(changes: list[dict[str, Any]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for c in changes:
        out.setdefault(c["op"], set()).add(c["record_id"])
    return out


def test_a_rep_moving_team_takes_their_records_to_the_new_managers_phones(world: World) -> None:
    admin = Web(world, "admin")
    mover, mgr_a, mgr_b = world.phone("rep_a2"), world.phone("mgr_a"), world.phone("mgr_b")
    cid, contact = new_id("c"), new_id("p")
    mover.push_one("customers", cid, customer_fields("随人走的客户"))
    mover.push_one("contacts", contact, {"customer_id": cid, "name": "联系人"})
    for p in (mover, mgr_a, mgr_b):
        p.sync_down()
    assert ("customers", cid) in mgr_a.records and ("customers", cid) not in mgr_b.records

    moved = admin.patch(f"/v1/manager/users/{world.users['rep_a2']}", json={"team_id": "team-b"})
    assert moved.status_code == 200, moved.text

    assert {cid, contact} <= _ops(mgr_a.sync_down()).get("evict", set())
    assert {cid, contact} <= _ops(mgr_b.sync_down()).get("upsert", set())
    assert ("customers", cid) in mgr_b.records and ("customers", cid) not in mgr_a.records
    assert _ops(mover.sync_down()).get("evict") is None  # the rep keeps their own
    # the new manager may now edit it; the old one may not
    v = mgr_b.versions[("customers", cid)]
    assert mgr_b.push_one("customers", cid, {"tier": "high"}, base_version=v)["status"] in (
        "applied",
        "merged",
    )
    refused = mgr_a.push_one("customers", cid, {"tier": "low"}, base_version=v)
    assert refused["error"]["code"] == "forbidden"


def test_a_manager_moving_team_sees_the_new_team_only(world: World) -> None:
    admin = Web(world, "admin")
    manager = world.phone("mgr_b")
    a_customer, b_customer = new_id("c"), new_id("c")
    world.phone("rep_a1").push_one("customers", a_customer, customer_fields("甲队"))
    world.phone("rep_b1").push_one("customers", b_customer, customer_fields("乙队"))
    manager.sync_down()
    assert ("customers", b_customer) in manager.records
    assert ("customers", a_customer) not in manager.records

    moved = admin.patch(f"/v1/manager/users/{world.users['mgr_b']}", json={"team_id": "team-a"})
    assert moved.status_code == 200, moved.text
    ops = _ops(manager.sync_down())
    assert b_customer in ops.get("evict", set()) and a_customer in ops.get("upsert", set())
    assert ("customers", a_customer) in manager.records
    assert ("customers", b_customer) not in manager.records
    # nothing changes for a plain rename
    renamed = admin.patch(
        f"/v1/manager/users/{world.users['rep_b1']}", json={"display_name": "新名字"}
    )
    assert renamed.status_code == 200
    assert manager.sync_down() == []
