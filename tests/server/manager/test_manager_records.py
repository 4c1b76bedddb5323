"""Entity CRUD through the manager API: versioned like a push, pulled by devices, guarded
by ``If-Match`` (412 with the current record), scoped to the manager's team."""

from __future__ import annotations

from typing import Any

from tests.server.conftest import World
from tests.server.manager.conftest import Web


def _change(changes: list[dict[str, Any]], collection: str, record_id: str) -> dict[str, Any]:
    [change] = [c for c in changes if (c["collection"], c["record_id"]) == (collection, record_id)]
    return change


def test_api_changes_reach_a_reps_next_pull(world: World, mgr: Web) -> None:
    rep = world.phone("rep_a1")
    rep.sync_down()
    customer = mgr.create(
        "customers", {"name": "张三", "status": "potential"}, owner_id=world.users["rep_a1"]
    )
    cid = customer["id"]
    assert customer["owner_id"] == world.users["rep_a1"]

    created = _change(rep.sync_down(), "customers", cid)
    assert created["op"] == "upsert"
    assert created["fields"]["name"] == "张三"
    assert created["version"] == customer["version"]

    response = mgr.patch(
        f"/v1/manager/records/customers/{cid}",
        json={"fields": {"status": "intent"}},
        headers={"If-Match": f'"{customer["version"]}"'},
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["version"] > customer["version"]
    assert response.headers["ETag"] == f'"{updated["version"]}"'
    pulled = _change(rep.sync_down(), "customers", cid)
    assert pulled["fields"]["status"] == "intent"
    assert pulled["version"] == updated["version"]

    # A child record created by the manager follows the customer to the rep's phone.
    contact = mgr.create("contacts", {"customer_id": cid, "name": "李经理"})
    assert contact["owner_id"] == world.users["rep_a1"]
    assert _change(rep.sync_down(), "contacts", contact["id"])["fields"]["name"] == "李经理"

    response = mgr.delete(
        f"/v1/manager/records/contacts/{contact['id']}",
        headers={"If-Match": f'"{contact["version"]}"'},
    )
    assert response.status_code == 200, response.text
    assert _change(rep.sync_down(), "contacts", contact["id"])["op"] == "delete"

    # The manager's writes are audit-logged like any push.
    audit = mgr.get("/v1/manager/audit", params={"entity": "customers", "record_id": cid}).json()
    # create + update of the customer (the owner change is logged against the new owner).
    assert [e["action"] for e in audit["items"]] == ["mutation.applied", "mutation.applied"]
    assert all(e["user_id"] == mgr.user_id for e in audit["items"])
    assert audit["items"][0]["details"]["version"] == updated["version"]


def test_stale_update_gets_412_with_the_current_record(world: World, mgr: Web) -> None:
    rep = world.phone("rep_a1")
    customer = mgr.create(
        "customers", {"name": "王五", "status": "potential"}, owner_id=world.users["rep_a1"]
    )
    cid, seen = customer["id"], customer["version"]
    rep.sync_down()
    # The rep edits the record on the phone; the manager's copy is now stale.
    result = rep.push_one(
        "customers", cid, {"tier": "high"}, base_version=rep.versions[("customers", cid)]
    )
    assert result["status"] == "applied"

    response = mgr.patch(
        f"/v1/manager/records/customers/{cid}",
        json={"fields": {"status": "closed"}, "base_version": seen},
    )
    assert response.status_code == 412, response.text
    error = response.json()["error"]
    assert error["code"] == "precondition_failed"
    current = error["details"]["current"]
    assert current["version"] == result["version"]
    assert current["fields"]["tier"] == "high"
    assert current["fields"]["status"] == "potential"
    # Nothing was written.
    now = mgr.get(f"/v1/manager/records/customers/{cid}").json()
    assert now == current

    # Based on the current version the update applies.
    response = mgr.patch(
        f"/v1/manager/records/customers/{cid}",
        json={"fields": {"status": "closed"}},
        headers={"If-Match": f'"{current["version"]}"'},
    )
    assert response.status_code == 200
    assert response.json()["fields"] == {
        "name": "王五",
        "owner_id": world.users["rep_a1"],
        "status": "closed",
        "tier": "high",
    }
    # An update without any base version is refused.
    response = mgr.patch(f"/v1/manager/records/customers/{cid}", json={"fields": {"tier": "low"}})
    assert response.status_code == 422
    assert response.json()["error"]["details"]["fields"][0]["field"] == "base_version"


def test_roles_and_scope(world: World, mgr: Web) -> None:
    rep = Web(world, "rep_a1")
    assert rep.get("/v1/manager/records/customers").status_code == 403
    assert rep.get("/v1/manager/records/customers").json()["error"]["code"] == "forbidden"
    mine = mgr.create("customers", {"name": "A队客户", "status": "potential"})
    other = Web(world, "mgr_b")
    response = other.get(f"/v1/manager/records/customers/{mine['id']}")
    assert response.status_code == 404
    assert other.get("/v1/manager/records/customers").json()["total"] == 0
    admin = Web(world, "admin")
    assert admin.get(f"/v1/manager/records/customers/{mine['id']}").status_code == 200
    # A manager cannot give a customer to a rep of another team.
    response = mgr.post(
        "/v1/manager/records/customers",
        json={"fields": {"name": "x", "status": "potential"}, "owner_id": world.users["rep_b1"]},
    )
    assert response.status_code == 403
    # Validation errors come back with the field.
    response = mgr.post("/v1/manager/records/customers", json={"fields": {"status": "nope"}})
    assert response.status_code == 422
    fields = {f["field"] for f in response.json()["error"]["details"]["fields"]}
    assert fields == {"status", "name"}
    # Append-only events cannot be changed.
    act = mgr.create(
        "activities",
        {"customer_id": mine["id"], "type": "call", "occurred_at": "2026-11-01T10:00:00+08:00"},
    )
    response = mgr.patch(
        f"/v1/manager/records/activities/{act['id']}",
        json={"fields": {"type": "visit"}, "base_version": act["version"]},
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "append_only"


def test_list_filters_searches_sorts_and_pages(world: World, mgr: Web) -> None:
    a1, a2 = world.users["rep_a1"], world.users["rep_a2"]
    mgr.create("customers", {"name": "Alpha 张", "status": "intent", "tier": "high"}, owner_id=a1)
    mgr.create("customers", {"name": "Beta", "status": "intent", "tier": "low"}, owner_id=a2)
    mgr.create("customers", {"name": "Gamma", "status": "potential", "company": "张氏集团"})
    mgr.create("customers", {"name": "Delta", "status": "intent", "tags": ["vip", "north"]})

    def names(**params: Any) -> list[str]:
        response = mgr.get("/v1/manager/records/customers", params=params)
        assert response.status_code == 200, response.text
        return [item["fields"]["name"] for item in response.json()["items"]]

    assert names(filter="status:intent", sort="name") == ["Alpha 张", "Beta", "Delta"]
    assert names(filter=["status:intent", "tier:high"]) == ["Alpha 张"]
    assert names(filter="tags:vip") == ["Delta"]
    assert names(q="张", sort="-name") == ["Gamma", "Alpha 张"]
    assert names(owner_id=a2) == ["Beta"]
    # "high" < "low"; records without a tier come last, in version order.
    assert names(sort="tier") == ["Alpha 张", "Beta", "Gamma", "Delta"]
    page = mgr.get(
        "/v1/manager/records/customers", params={"sort": "name", "offset": 1, "limit": 2}
    ).json()
    assert page["total"] == 4
    assert [i["fields"]["name"] for i in page["items"]] == ["Beta", "Delta"]
    bad = mgr.get("/v1/manager/records/customers", params={"filter": "nocolon"})
    assert bad.status_code == 422
