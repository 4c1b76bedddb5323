"""The leads pages: a lead created for a rep reaches the rep's phone; a lead's page
converts it (customer + contact + deal, all at once, through the manager API's own
operation); a new customer that looks like an existing one asks the manager to create it
anyway or to convert into the existing customer; search by pinyin initials."""

from __future__ import annotations

import re

from tests.server.conftest import World
from tests.server.console.conftest import Browser

_LEAD = re.compile(r'<tr id="lead-([^"]+)">')


def _stages(world: World) -> None:
    admin = world.phone("admin")
    admin.push_one("pipeline_stages", "s-1", {"name": "Lead", "name_zh": "初步接洽", "position": 1})
    admin.push_one("pipeline_stages", "s-won", {"name": "Won", "position": 9, "is_won": True})


def test_create_for_a_rep_then_convert(sqlite_world: World) -> None:
    world = sqlite_world
    _stages(world)
    rep = world.phone("rep_a2")
    rep.sync_down()
    mgr = Browser(world, "mgr_a")
    form = mgr.get("/console/leads").text
    assert 'name="owner_id"' in form and "u-rep_a2" in form and "u-rep_b1" not in form
    created = mgr.post(
        "/console/leads",
        {
            "name": "王五",
            "company": "星辰科技",
            "phone": "13900001111",
            "status": "new",
            "owner_id": "u-rep_a2",
        },
    )
    assert created.status_code == 303
    lead_id = created.headers["location"].split("/")[-1].split("?")[0]
    # The rep's phone receives the lead it now owns.
    rep.sync_down()
    assert rep.records[("leads", lead_id)]["name"] == "王五"
    assert rep.records[("leads", lead_id)]["owner_id"] == "u-rep_a2"
    # The list finds it by pinyin initials and by owner.
    assert _LEAD.findall(mgr.get("/console/leads?q=ww").text) == [lead_id]
    assert _LEAD.findall(mgr.get("/console/leads?owner=u-rep_a2").text) == [lead_id]
    assert _LEAD.findall(mgr.get("/console/leads?owner=u-rep_a1").text) == []
    assert _LEAD.findall(mgr.get("/console/leads?status=qualified").text) == []

    page = mgr.get(f"/console/leads/{lead_id}").text
    assert "初步接洽" in page and 'id="convert-form"' in page
    # A deal without a stage is refused before anything is written.
    refused = mgr.post(f"/console/leads/{lead_id}/convert", {"deal": "on", "stage_id": ""})
    assert refused.status_code == 422
    done = mgr.post(
        f"/console/leads/{lead_id}/convert",
        {
            "contact": "on",
            "deal": "on",
            "deal_name": "扫地机器人 200 台",
            "stage_id": "s-1",
            "amount": "380,000",
        },
    )
    assert done.status_code == 303, done.text[:500]
    customer_id = done.headers["location"].split("/")[-1].split("?")[0]
    rep.sync_down()
    lead = rep.records[("leads", lead_id)]
    assert lead["status"] == "converted" and lead["converted_customer_id"] == customer_id
    customer = rep.records[("customers", customer_id)]
    assert customer["name"] == "星辰科技" and customer["owner_id"] == "u-rep_a2"
    contact = rep.records[("contacts", lead["converted_contact_id"])]
    assert contact["name"] == "王五" and contact["customer_id"] == customer_id
    deal = rep.records[("opportunities", lead["converted_opportunity_id"])]
    assert deal["amount"] == 380000.0 and deal["stage_id"] == "s-1"
    # The lead's page now links what it became and offers no second conversion.
    page = mgr.get(f"/console/leads/{lead_id}").text
    assert 'id="convert-form"' not in page and f"/console/customers/{customer_id}" in page
    again = mgr.post(f"/console/leads/{lead_id}/convert", {"contact": "on"})
    assert again.status_code == 422
    assert len([k for k in rep.records if k[0] == "customers"]) == 1


def test_duplicate_customer_asks_the_manager(sqlite_world: World) -> None:
    world = sqlite_world
    rep = world.phone("rep_a1")
    # The lead first: a lead that matches an existing customer is flagged on push.
    lead = {"name": "陈七", "company": "华夏物流", "phone": "02155550101", "status": "qualified"}
    assert rep.push_one("leads", "l-dup", lead)["status"] == "applied"
    old = {"name": "华夏物流", "phone": "021 5555 0101", "status": "intent"}
    assert rep.push_one("customers", "c-old", old)["status"] == "applied"
    mgr = Browser(world, "mgr_a")
    asked = mgr.post("/console/leads/l-dup/convert", {"contact": "on"})
    assert asked.status_code == 409
    assert 'id="duplicates"' in asked.text and "/console/customers/c-old" in asked.text
    rep.sync_down()
    assert rep.records[("leads", "l-dup")]["status"] == "qualified"  # nothing written
    # The manager converts into the existing customer.
    done = mgr.post(
        "/console/leads/l-dup/convert", {"contact": "on", "existing_customer_id": "c-old"}
    )
    assert done.status_code == 303 and done.headers["location"].startswith(
        "/console/customers/c-old"
    )
    rep.sync_down()
    lead = rep.records[("leads", "l-dup")]
    assert lead["converted_customer_id"] == "c-old"
    assert rep.records[("contacts", lead["converted_contact_id"])]["customer_id"] == "c-old"
    assert [k for k in rep.records if k[0] == "customers"] == [("customers", "c-old")]


def test_create_anyway_after_the_duplicate_warning(sqlite_world: World) -> None:
    world = sqlite_world
    rep = world.phone("rep_a1")
    lead = {"name": "蓝海贸易", "email": "buy@lanhai.cn", "status": "new"}
    assert rep.push_one("leads", "l-2", lead)["status"] == "applied"
    old = {"name": "蓝海贸易", "email": "buy@lanhai.cn", "status": "intent"}
    assert rep.push_one("customers", "c-old", old)["status"] == "applied"
    mgr = Browser(world, "mgr_a")
    assert mgr.post("/console/leads/l-2/convert", {}).status_code == 409
    done = mgr.post("/console/leads/l-2/convert", {"override": "possible_duplicate"})
    assert done.status_code == 303
    rep.sync_down()
    customers = [k for k in rep.records if k[0] == "customers"]
    assert len(customers) == 2


def test_reassign_one_lead_and_spread_many(sqlite_world: World) -> None:
    """A lead's page gives it to another rep (the old rep's phone drops it, the new rep's
    receives it); the list's bulk action spreads ticked leads over the team's reps."""
    world = sqlite_world
    old, new = world.phone("rep_a1"), world.phone("rep_a2")
    assert old.push_one("leads", "l-1", {"name": "赵六", "status": "new"})["status"] == "applied"
    old.sync_down()
    new.sync_down()
    mgr = Browser(world, "mgr_a")
    page = mgr.get("/console/leads/l-1").text
    assert 'id="assign-form"' in page and 'value="u-rep_a2"' in page
    assert mgr.post("/console/leads/l-1/assign", {"to": "u-rep_a2"}).status_code == 303
    assert ("leads", "l-1") in {(c["collection"], c["record_id"]) for c in old.sync_down()}
    assert ("leads", "l-1") not in old.records  # evicted from the old rep's phone
    new.sync_down()
    assert new.records[("leads", "l-1")]["owner_id"] == "u-rep_a2"

    created = [
        mgr.post("/console/leads", {"name": f"线索{i}", "status": "new"}).headers["location"]
        for i in range(4)
    ]
    ids = [loc.split("/")[-1].split("?")[0] for loc in created]
    done = mgr.client.post(
        "/console/leads/assign",
        data={
            "csrf_token": mgr.csrf,
            "lead_id": ids,
            "to": "round_robin",
            "back": "/console/leads?status=new&assigned=9",
        },
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/console/leads?status=new&assigned=4"
    old.sync_down()
    new.sync_down()
    mine = {k[1] for k in old.records if k[0] == "leads"}
    theirs = {k[1] for k in new.records if k[0] == "leads"}
    assert mine | theirs >= set(ids) and not mine & theirs
    # rep_a2 already held one open lead: rep_a1 is served first, so 2 + 2
    assert len(mine & set(ids)) == 2 and len(theirs & set(ids)) == 2
