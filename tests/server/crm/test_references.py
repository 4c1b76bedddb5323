"""Referential integrity and typed custom fields on push and the manager API — SQLite
and PostgreSQL."""

from __future__ import annotations

from typing import Any

from tests.server.conftest import World, customer_fields, new_id
from tests.server.manager.conftest import Web


def codes(result: dict[str, Any]) -> list[tuple[str, str]]:
    assert result["status"] == "rejected", result
    return [(f["field"], f["code"]) for f in result["error"]["details"]["fields"]]


def test_references_must_exist_be_live_and_in_scope(world: World) -> None:
    admin, rep, other = world.phone("admin"), world.phone("rep_a1"), world.phone("rep_b1")
    stage = new_id("s")
    admin.push_one("pipeline_stages", stage, {"name": "Lead", "position": 1})
    cid, theirs = new_id("c"), new_id("c")
    rep.push_one("customers", cid, customer_fields())
    other.push_one("customers", theirs, customer_fields())
    their_opp = new_id("o")
    deal = {"customer_id": theirs, "name": "B", "stage_id": stage, "status": "open"}
    assert other.push_one("opportunities", their_opp, deal)["status"] == "applied"

    opp = {"customer_id": cid, "name": "A", "stage_id": "no-such-stage", "status": "open"}
    assert codes(rep.push_one("opportunities", new_id("o"), opp)) == [("stage_id", "unknown_ref")]
    activity = {
        "customer_id": cid,
        "type": "call",
        "occurred_at": "2026-12-01T10:00:00Z",
        "opportunity_id": their_opp,  # exists, but rep_b1's: same answer as missing
    }
    assert codes(rep.push_one("activities", new_id("a"), activity)) == [
        ("opportunity_id", "unknown_ref")
    ]
    task = {"customer_id": cid, "title": "t", "status": "open", "assignee_id": "u-nobody"}
    assert codes(rep.push_one("tasks", new_id("t"), task)) == [("assignee_id", "unknown_ref")]
    # admin sees both customers, but an activity points within its own customer
    activity["customer_id"] = cid
    assert codes(admin.push_one("activities", new_id("a"), activity)) == [
        ("opportunity_id", "other_customer")
    ]
    # a reference created earlier in the same push (or group) is fine
    own_opp = new_id("o")
    results = rep.push(
        [
            rep.mutation("opportunities", own_opp, {**opp, "stage_id": stage}),
            rep.mutation("activities", new_id("a"), {**activity, "opportunity_id": own_opp}),
        ]
    )
    assert [r["status"] for r in results] == ["applied", "applied"]
    # a deleted stage cannot be pointed to any more
    admin.push_one("pipeline_stages", stage, op="delete", base_version=1)
    assert codes(rep.push_one("opportunities", new_id("o"), {**opp, "stage_id": stage})) == [
        ("stage_id", "unknown_ref")
    ]


def test_manager_api_refuses_a_dangling_product(world: World) -> None:
    mgr = Web(world, "mgr_a")
    cid = mgr.create("customers", customer_fields())["id"]
    qid = mgr.create(
        "quotes", {"customer_id": cid, "kind": "quote", "number": "Q-1", "status": "draft"}
    )["id"]
    line = {
        "customer_id": cid,
        "quote_id": qid,
        "product_id": "p-none",
        "quantity": 1,
        "unit_price": 1,
    }
    response = mgr.post("/v1/manager/records/quote_lines", json={"fields": line})
    assert response.status_code == 422
    assert response.json()["error"]["details"]["fields"][0]["field"] == "product_id"


def test_custom_fields_are_typed_by_their_declarations(world: World) -> None:
    mgr, rep = Web(world, "mgr_a"), world.phone("rep_a1")
    # a customer may carry free-form custom values while nothing is declared
    cid = new_id("c")
    free = {**customer_fields(), "custom": {"anything": [1, 2]}}
    assert rep.push_one("customers", cid, free)["status"] == "applied"
    for fields in (
        {"entity": "leads", "key": "budget", "type": "number", "label": "Budget", "required": True},
        {
            "entity": "leads",
            "key": "region",
            "type": "choice",
            "label": "Region",
            "options": ["华北", "华南"],
        },
    ):
        mgr.create("custom_field_defs", fields)
    bad_def = mgr.post(
        "/v1/manager/records/custom_field_defs",
        json={"fields": {"entity": "leads", "key": "Bad Key", "type": "string", "label": "x"}},
    )
    assert bad_def.status_code == 422
    clash = mgr.post(
        "/v1/manager/records/custom_field_defs",
        json={"fields": {"entity": "leads", "key": "budget", "type": "string", "label": "x"}},
    )
    assert clash.json()["error"]["details"]["fields"][0]["code"] == "duplicate"
    rep.sync_down()  # the declarations reach the devices like products do
    assert any(c == "custom_field_defs" for c, _ in rep.records)

    lead = {"name": "线索", "status": "new"}
    assert codes(rep.push_one("leads", new_id("l"), lead)) == [("custom.budget", "required")]
    wrong = {**lead, "custom": {"budget": "lots", "region": "西北", "extra": 1}}
    assert sorted(codes(rep.push_one("leads", new_id("l"), wrong))) == [
        ("custom.budget", "type"),
        ("custom.extra", "unknown_field"),
        ("custom.region", "type"),
    ]
    lid = new_id("l")
    good = {**lead, "custom": {"budget": 50000, "region": "华南"}}
    assert rep.push_one("leads", lid, good)["status"] == "applied"
    # an edit that does not touch custom values is not re-checked
    assert rep.push_one("leads", lid, {"status": "contacted"}, base_version=1)["status"] in (
        "applied",
        "merged",
    )
