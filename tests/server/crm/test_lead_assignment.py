"""Leads follow their assignee: single and bulk reassignment, round-robin over a team,
and a leaving rep's leads and sales targets move with their customers — phones follow
(pull at the new owner, eviction at the old). SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from tests.server.conftest import World, customer_fields, new_id
from tests.server.manager.conftest import Web


def _lead(mgr: Web, owner: str, name: str, status: str = "new") -> str:
    made = mgr.create("leads", {"name": name, "status": status}, owner_id=owner)
    lid: str = made["id"]
    return lid


def _ids(changes: list[dict[str, Any]], op: str) -> set[str]:
    return {c["record_id"] for c in changes if c["op"] == op}


def test_reassigned_leads_move_between_phones(world: World) -> None:
    mgr = Web(world, "mgr_a")
    a1, a2 = world.phone("rep_a1"), world.phone("rep_a2")
    lids = [_lead(mgr, world.users["rep_a1"], f"转交{i}") for i in range(2)]
    a1.sync_down()
    a2.sync_down()
    assert all(("leads", lid) in a1.records for lid in lids)
    moved = mgr.post(
        "/v1/manager/leads/reassign", json={"lead_ids": lids, "new_owner_id": world.users["rep_a2"]}
    )
    assert moved.status_code == 200, moved.text
    out = moved.json()
    assert out["assignments"] == {lid: world.users["rep_a2"] for lid in lids}
    assert out["moved"] == 2 and world.users["rep_a1"] in out["evicted_users"]
    assert _ids(a1.sync_down(), "evict") == set(lids)
    got = a2.sync_down()
    assert _ids(got, "upsert") >= set(lids)
    assert a2.records[("leads", lids[0])]["owner_id"] == world.users["rep_a2"]
    # the new owner edits it; the old one can no longer
    v = a2.versions[("leads", lids[0])]
    assert a2.push_one("leads", lids[0], {"status": "contacted"}, base_version=v)["status"] in (
        "applied",
        "merged",
    )
    refused = a1.push_one("leads", lids[0], {"status": "qualified"}, base_version=v)
    assert refused["error"]["code"] == "forbidden"


def test_reassignment_stays_in_scope(world: World) -> None:
    mgr_a, mgr_b = Web(world, "mgr_a"), Web(world, "mgr_b")
    lid = _lead(mgr_a, world.users["rep_a1"], "界内")
    to_b = mgr_a.post(
        "/v1/manager/leads/reassign",
        json={"lead_ids": [lid], "new_owner_id": world.users["rep_b1"]},
    )
    assert to_b.status_code == 403
    steal = mgr_b.post(
        "/v1/manager/leads/reassign",
        json={"lead_ids": [lid], "new_owner_id": world.users["rep_b1"]},
    )
    assert steal.status_code == 403
    unknown = mgr_a.post(
        "/v1/manager/leads/reassign",
        json={"lead_ids": [lid, "l-nope"], "new_owner_id": world.users["rep_a2"]},
    )
    assert unknown.status_code == 404
    lead = mgr_a.get(f"/v1/manager/records/leads/{lid}").json()
    assert lead["owner_id"] == world.users["rep_a1"]  # nothing moved by the refused calls
    rep = world.phone("rep_a1")
    r = world.client.post("/v1/manager/leads/assign", json={"lead_ids": [lid]}, headers=rep.headers)
    assert r.status_code == 403


def test_round_robin_starts_with_the_least_loaded_rep(world: World) -> None:
    mgr = Web(world, "mgr_a")
    a1, a2 = world.users["rep_a1"], world.users["rep_a2"]
    load = mgr.post("/v1/manager/leads/assign", json={"lead_ids": [_lead(mgr, a1, "占位")]})
    assert load.status_code == 200, load.text

    # count what each holds now, then spread five more
    def open_count(owner: str) -> int:
        items = mgr.get(
            "/v1/manager/records/leads", params={"owner_id": owner, "limit": 1000}
        ).json()["items"]
        return sum(i["fields"]["status"] in ("new", "contacted", "qualified") for i in items)

    first = a1 if (open_count(a1), a1) < (open_count(a2), a2) else a2
    second = a2 if first == a1 else a1
    fresh = [_lead(mgr, world.users["mgr_a"], f"池{i}") for i in range(5)]
    spread = mgr.post("/v1/manager/leads/assign", json={"lead_ids": fresh})
    assert spread.status_code == 200, spread.text
    got = spread.json()["assignments"]
    assert list(got) == fresh
    assert [got[lid] for lid in fresh] == [first, second, first, second, first]
    named = mgr.post("/v1/manager/leads/assign", json={"lead_ids": fresh[:2], "rep_ids": [a2]})
    assert set(named.json()["assignments"].values()) == {a2}
    outside = mgr.post(
        "/v1/manager/leads/assign", json={"lead_ids": fresh[:1], "rep_ids": [world.users["rep_b1"]]}
    )
    assert outside.status_code == 403


def test_a_leaving_rep_hands_over_customers_leads_and_targets(world: World) -> None:
    admin, mgr = Web(world, "admin"), Web(world, "mgr_b")
    leaving, staying = world.users["rep_b1"], world.users["mgr_b"]
    phone = world.phone("rep_b1")
    cid = new_id("c")
    phone.push_one("customers", cid, customer_fields("交接客户"))
    lid = _lead(mgr, leaving, "交接线索")
    target = mgr.create(
        "sales_targets",
        {"owner_id": leaving, "period_start": "2026-12-01", "period_end": "2026-12-31",
         "amount": 50000},
    )  # fmt: skip
    phone.sync_down()
    out = admin.post(
        "/v1/manager/customers/reassign-owner",
        json={"from_owner_id": leaving, "new_owner_id": staying},
    )
    assert out.status_code == 200, out.text
    body = out.json()
    assert body["customers"] >= 1 and body["leads"] >= 1 and body["targets"] >= 1
    evicted = _ids(phone.sync_down(), "evict")
    assert {cid, lid, target["id"]} <= evicted
    for collection, rid in (("customers", cid), ("leads", lid), ("sales_targets", target["id"])):
        row = mgr.get(f"/v1/manager/records/{collection}/{rid}").json()
        assert row["owner_id"] == staying, collection
