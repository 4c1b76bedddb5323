"""Merging two customers: every child re-pointed, the loser evicted from the devices
that held it, the survivor completed — SQLite and PostgreSQL."""

from __future__ import annotations

from tests.server.conftest import World, new_id
from tests.server.manager.conftest import Web


def test_merge_repoints_children_and_evicts_the_loser(world: World) -> None:
    mgr, a1, a2 = Web(world, "mgr_a"), world.phone("rep_a1"), world.phone("rep_a2")
    survivor, loser = new_id("c"), new_id("c")
    a1.push_one("customers", survivor, {"name": "华强电子", "status": "intent", "tags": ["vip"]})
    loser_fields = {
        "name": "华强电子(深圳)",
        "status": "potential",
        "phone": "13600000001",
        "tags": ["深圳"],
        "notes": "老客户",
    }
    a2.push_one("customers", loser, loser_fields)
    contact, activity = new_id("p"), new_id("a")
    a2.push(
        [
            a2.mutation("contacts", contact, {"customer_id": loser, "name": "李经理"}),
            a2.mutation(
                "activities",
                activity,
                {"customer_id": loser, "type": "visit", "occurred_at": "2026-12-01T09:00:00Z"},
            ),
        ]
    )
    lead = new_id("l")
    a2.push_one("leads", lead, {"name": "李经理", "status": "qualified", "company": "华强"})
    a2.sync_down()
    a2.push_one(
        "leads",
        lead,
        {"status": "converted", "converted_customer_id": loser},
        base_version=a2.versions[("leads", lead)],
    )
    a1.sync_down()
    a2.sync_down()
    assert ("customers", loser) in a2.records

    response = mgr.post(
        "/v1/manager/customers/merge",
        json={"survivor_id": survivor, "loser_id": loser, "fields": {"status": "closed"}},
    )
    assert response.status_code == 200, response.text
    out = response.json()
    assert out["moved"] == {"activities": 1, "contacts": 1, "leads": 1}
    assert out["reassigned"] is True
    fields = out["survivor"]["fields"]
    assert fields["phone"] == "13600000001"  # taken from the loser: the survivor had none
    assert fields["tags"] == ["vip", "深圳"]
    assert fields["notes"] == "老客户"
    assert fields["status"] == "closed"  # the caller's choice wins
    assert fields["name"] == "华强电子"

    # the loser's rep: the loser and its children leave the phone
    changes = a2.sync_down()
    evicted = {(c["collection"], c["record_id"]) for c in changes if c["op"] == "evict"}
    assert {("customers", loser), ("contacts", contact), ("activities", activity)} <= evicted
    assert ("customers", loser) not in a2.records
    assert a2.records[("leads", lead)]["converted_customer_id"] == survivor  # own lead
    # the survivor's rep: the loser is gone, the children arrive under the survivor
    a1.sync_down()
    assert ("customers", loser) not in a1.records
    assert a1.records[("contacts", contact)]["customer_id"] == survivor
    assert a1.records[("activities", activity)]["customer_id"] == survivor
    assert a1.records[("customers", survivor)]["phone"] == "13600000001"
    assert mgr.get(f"/v1/manager/records/customers/{loser}").status_code == 404
    # the loser's number now belongs to the survivor: a new customer with it is flagged
    again = a1.push_one(
        "customers", new_id("c"), {"name": "x", "status": "potential", "phone": "13600000001"}
    )
    assert again["error"]["details"]["matches"][0]["record_id"] == survivor


def test_merging_into_itself_or_outside_scope_is_refused(world: World) -> None:
    mgr, b1 = Web(world, "mgr_a"), world.phone("rep_b1")
    mine = mgr.create("customers", {"name": "自己", "status": "potential"})["id"]
    theirs = new_id("c")
    b1.push_one("customers", theirs, {"name": "别人", "status": "potential"})
    same = mgr.post("/v1/manager/customers/merge", json={"survivor_id": mine, "loser_id": mine})
    assert same.status_code == 409
    other = mgr.post("/v1/manager/customers/merge", json={"survivor_id": mine, "loser_id": theirs})
    assert other.status_code == 404
