"""Leads: managers create them for reps; conversion as one atomic group — sent offline by
a device, or by the manager API — with the duplicate check; SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from server.models import Record
from sync_protocol.leads import plan_conversion
from tests.server.conftest import Phone, World, new_id
from tests.server.manager.conftest import Web

LEAD = {"name": "王五", "company": "远山科技", "phone": "13700000001", "status": "qualified"}


def _stage(world: World) -> str:
    sid = new_id("s")
    world.phone("admin").push_one("pipeline_stages", sid, {"name": "Lead", "position": 1})
    return sid


def _lead(device: Phone, **fields: Any) -> str:
    lid = new_id("l")
    assert device.push_one("leads", lid, {**LEAD, **fields})["status"] == "applied"
    return lid


def test_a_manager_creates_leads_for_reps_of_the_team_only(world: World) -> None:
    mgr, rep = Web(world, "mgr_a"), world.phone("rep_a1")
    rep.sync_down()
    body = {"fields": {"name": "线索甲", "status": "new"}, "owner_id": world.users["rep_a1"]}
    created = mgr.post("/v1/manager/records/leads", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["owner_id"] == world.users["rep_a1"]
    assert [c["record_id"] for c in rep.sync_down()] == [created.json()["id"]]
    body["owner_id"] = world.users["rep_b1"]
    outside = mgr.post("/v1/manager/records/leads", json=body)
    assert (outside.status_code, outside.json()["error"]["code"]) == (403, "forbidden")
    # a rep cannot place a record with someone else, nor a manager move one by patching
    m = rep.mutation("leads", new_id("l"), {"name": "x", "status": "new", "owner_id": "u-rep_a2"})
    assert rep.push([m])[0]["error"]["details"]["fields"][0]["code"] == "read_only"
    lead = created.json()
    patch = mgr.patch(
        f"/v1/manager/records/leads/{lead['id']}",
        json={"fields": {"owner_id": world.users["rep_a2"]}, "base_version": lead["version"]},
    )
    assert patch.status_code == 422


def test_a_lead_converted_offline_arrives_as_one_atomic_group(world: World) -> None:
    rep, mgr = world.phone("rep_a1"), world.phone("mgr_a")
    stage = _stage(world)
    lid = _lead(rep)
    rep.sync_down()
    plan = plan_conversion(
        lid,
        rep.records[("leads", lid)],
        customer_id=new_id("c"),
        contact_id=new_id("p"),
        opportunity_id=new_id("o"),
        opportunity={"stage_id": stage, "amount": 120000},
        converted_at="2026-12-02T10:00:00+08:00",
    )
    group = new_id("g")
    batch = [
        {
            **rep.mutation(
                w.collection,
                w.record_id,
                w.fields,
                base_version=rep.versions.get((w.collection, w.record_id)),
            ),
            "group": group,
        }
        for w in plan.writes
    ]
    # the same group with a broken opportunity leaves nothing behind
    broken = [dict(m, id=new_id("m"), fields=dict(m["fields"])) for m in batch]
    broken[2]["fields"]["stage_id"] = "gone"
    results = rep.push(broken)
    assert [r["error"]["code"] for r in results] == [
        "group_rejected",
        "group_rejected",
        "validation_failed",
        "group_rejected",
    ]
    assert rep.sync_down() == []
    assert [r["status"] for r in rep.push(batch)] == ["applied"] * 4
    mgr.sync_down()
    lead = mgr.records[("leads", lid)]
    assert lead["status"] == "converted"
    assert lead["converted_customer_id"] == plan.customer_id
    assert lead["converted_contact_id"] == plan.contact_id
    assert lead["converted_opportunity_id"] == plan.opportunity_id
    assert mgr.records[("customers", plan.customer_id)]["name"] == "远山科技"
    assert mgr.records[("customers", plan.customer_id)]["owner_id"] == world.users["rep_a1"]
    assert mgr.records[("contacts", plan.contact_id)]["name"] == "王五"
    deal = mgr.records[("opportunities", plan.opportunity_id)]
    assert (deal["lead_id"], deal["amount"], deal["status"]) == (lid, 120000, "open")
    # a converted lead stays converted
    v = rep.versions.get(("leads", lid)) or 0
    again = rep.push_one("leads", lid, {"status": "qualified"}, base_version=v)
    assert again["error"]["details"]["fields"][0]["code"] == "already_converted"


def test_converted_needs_its_customer(world: World) -> None:
    rep = world.phone("rep_a1")
    lid = _lead(rep, phone="13700000002", company="另一家")
    result = rep.push_one("leads", lid, {"status": "converted"}, base_version=1)
    assert result["error"]["details"]["fields"][0]["field"] == "converted_customer_id"


def test_manager_api_converts_with_a_duplicate_check(world: World) -> None:
    mgr, rep = Web(world, "mgr_a"), world.phone("rep_a1")
    stage = _stage(world)
    lid = _lead(rep, phone="13700000003", company="海川贸易")
    url = f"/v1/manager/leads/{lid}/convert"
    done = mgr.post(url, json={"opportunity": {"stage_id": stage, "name": "首单"}})
    assert done.status_code == 200, done.text
    out = done.json()
    assert out["lead"]["fields"]["status"] == "converted"
    assert out["lead"]["fields"]["converted_opportunity_id"] == out["opportunity_id"]
    customer = mgr.get(f"/v1/manager/records/customers/{out['customer_id']}").json()
    assert customer["owner_id"] == world.users["rep_a1"]  # the lead's owner, not the manager
    assert mgr.post(url, json={}).json()["error"]["details"]["fields"][0]["code"] == (
        "already_converted"
    )
    # a second lead for the same company and number: the new customer looks like the first
    twin = _lead(rep, name="王五五", phone="13700000004", company="海川贸易有限公司")
    refused = mgr.post(f"/v1/manager/leads/{twin}/convert", json={})
    assert refused.status_code == 409
    matches = refused.json()["error"]["details"]["matches"]
    assert matches[0]["record_id"] == out["customer_id"]
    with world.context.engine.connect() as conn:  # nothing of the refused group stored
        status = conn.execute(
            select(Record.data).where(Record.collection == "leads", Record.record_id == twin)
        ).scalar_one()
    assert '"converted"' not in status
    into = mgr.post(
        f"/v1/manager/leads/{twin}/convert", json={"existing_customer_id": out["customer_id"]}
    )
    assert into.status_code == 200, into.text
    assert into.json()["existing_customer"] is True
    contacts = mgr.get(
        "/v1/manager/records/contacts", params={"filter": f"customer_id:{out['customer_id']}"}
    ).json()["items"]
    assert sorted(c["fields"]["name"] for c in contacts) == ["王五", "王五五"]
