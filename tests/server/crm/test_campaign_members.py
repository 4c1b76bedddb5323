"""Campaign members follow their customer (the old leak: every rep pulled every member,
with customer ids and revenue) — and members stored before the fix are moved and
evicted from the phones that should not hold them. SQLite and PostgreSQL."""

from __future__ import annotations

import json

from sqlalchemy import insert, select

from server.crm.rescope import rescope_campaign_members
from server.models import Record
from server.repository.state import lock_counter, store_counter
from sync_protocol.hlc import wall_clock_ms
from tests.server.conftest import World, customer_fields, new_id
from tests.server.manager.conftest import Web


def _campaign(world: World) -> str:
    kid = new_id("k")
    world.phone("admin").push_one("campaigns", kid, {"name": "春季展会", "status": "active"})
    return kid


def test_members_reach_only_those_who_see_the_customer(world: World) -> None:
    mgr_a, mgr_b = Web(world, "mgr_a"), Web(world, "mgr_b")
    owner, colleague, other = world.phone("rep_a1"), world.phone("rep_a2"), world.phone("rep_b1")
    for p in (owner, colleague, other):
        p.sync_down()
    cid = new_id("c")
    owner.push_one("customers", cid, customer_fields("参会客户"))
    kid = _campaign(world)
    member = {"campaign_id": kid, "customer_id": cid, "status": "attended", "revenue": 5000}
    made = mgr_a.create("campaign_members", member)
    assert made["owner_id"] == world.users["rep_a1"] and made["customer_id"] == cid
    assert ("campaign_members", made["id"]) in {
        (c["collection"], c["record_id"]) for c in owner.sync_down()
    }
    for p in (colleague, other):
        assert "campaign_members" not in {c["collection"] for c in p.sync_down()}
    # another team's manager cannot enrol this customer; a member needs its customer
    refused = mgr_b.post("/v1/manager/records/campaign_members", json={"fields": member})
    assert refused.status_code in (403, 404), refused.text
    bare = mgr_a.post(
        "/v1/manager/records/campaign_members",
        json={"fields": {"campaign_id": kid, "status": "invited"}},
    )
    assert bare.status_code == 422
    # reps still cannot write members
    m = owner.mutation("campaign_members", new_id("m"), member)
    assert owner.push([m])[0]["error"]["code"] == "forbidden"


def test_members_stored_as_reference_data_are_moved_and_evicted(world: World) -> None:
    owner, colleague, other = world.phone("rep_a1"), world.phone("rep_a2"), world.phone("rep_b1")
    cid = new_id("c")
    owner.push_one("customers", cid, customer_fields("老数据"))
    kid = _campaign(world)
    leaked, orphan = new_id("m"), new_id("m")
    now = wall_clock_ms()
    with world.context.engine.begin() as conn:  # as the old server stored them
        version = int(
            conn.execute(select(Record.version).order_by(Record.version.desc()).limit(1)).scalar()
            or 0
        )
        for i, (rid, fields) in enumerate(
            [
                (
                    leaked,
                    {"campaign_id": kid, "customer_id": cid, "status": "converted", "revenue": 9},
                ),
                (orphan, {"campaign_id": kid, "status": "invited"}),
            ]
        ):
            conn.execute(
                insert(Record).values(
                    collection="campaign_members",
                    record_id=rid,
                    owner_id=None,
                    customer_id=None,
                    version=version + 1 + i,
                    deleted=False,
                    data=json.dumps(fields),
                    clocks="{}",
                    created_at_ms=now,
                    updated_at_ms=now,
                )
            )
        state = lock_counter(conn)
        state.counter = max(state.counter, version + 2)
        store_counter(conn, state)
    for p in (owner, colleague, other):
        p.sync_down()
        assert ("campaign_members", leaked) in p.records  # the leak, as it was
    with world.context.engine.begin() as conn:
        assert rescope_campaign_members(conn, wall_clock_ms()) == 2
        assert rescope_campaign_members(conn, wall_clock_ms()) == 0  # once
    for p in (colleague, other):
        ops = {(c["record_id"], c["op"]) for c in p.sync_down()}
        assert (leaked, "evict") in ops and ("campaign_members", leaked) not in p.records
        assert ("campaign_members", orphan) not in p.records
    owner.sync_down()
    assert owner.records[("campaign_members", leaked)]["revenue"] == 9
    assert ("campaign_members", orphan) not in owner.records
    mgr = world.phone("mgr_a")
    mgr.sync_down()
    assert ("campaign_members", leaked) in mgr.records
