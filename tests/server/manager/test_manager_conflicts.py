"""The conflicts inbox: a manual-merge conflict made by two phones is listed, resolved
from the API (local / remote / a new value), and the resolution syncs to the phones."""

from __future__ import annotations

from typing import Any

from tests.server.conftest import World
from tests.server.manager.conftest import Web


def _conflict(world: World, number: str) -> tuple[str, str, Any]:
    """Two phones of rep_a1 set a contract's (manual) amount concurrently: 100 → 200 / 300."""
    a, b = world.phone("rep_a1"), world.phone("rep_a1")
    cid, kid = f"c-{number}", f"k-{number}"
    a.push_one("customers", cid, {"name": "客户", "status": "intent"})
    contract = {"customer_id": cid, "number": number, "status": "draft", "amount": 100.0}
    v = a.push_one("contracts", kid, contract)["version"]
    a.push_one("contracts", kid, {"amount": 200.0}, base_version=v, base={"amount": 100.0})
    result = b.push_one("contracts", kid, {"amount": 300.0}, base_version=v, base={"amount": 100.0})
    assert result["status"] == "conflict"
    return result["conflict_ids"][0], kid, b


def test_list_and_resolve_with_each_choice(world: World, mgr: Web) -> None:
    local_id, k_local, phone = _conflict(world, "HT-1")
    remote_id, k_remote, _ = _conflict(world, "HT-2")
    value_id, k_value, _ = _conflict(world, "HT-3")
    phone.sync_down()

    inbox = mgr.get("/v1/manager/conflicts").json()
    assert inbox["total"] == 3
    assert {c["id"] for c in inbox["items"]} == {local_id, remote_id, value_id}
    first = next(c for c in inbox["items"] if c["id"] == local_id)
    assert (first["field"], first["base"], first["local"], first["remote"]) == (
        "amount",
        100.0,
        300.0,
        200.0,
    )
    assert first["collection"] == "contracts" and first["record_id"] == k_local
    # Team B's manager sees none of them.
    assert Web(world, "mgr_b").get("/v1/manager/conflicts").json()["total"] == 0

    for conflict_id, body, expected in (
        (local_id, {"choice": "local"}, 300.0),
        (remote_id, {"choice": "remote"}, 200.0),
        (value_id, {"choice": "value", "value": 250.0}, 250.0),
    ):
        response = mgr.post(f"/v1/manager/conflicts/{conflict_id}/resolve", json=body)
        assert response.status_code == 200, response.text
        resolved = response.json()
        assert resolved["status"] == "resolved"
        assert resolved["resolution"]["value"] == expected
        assert resolved["resolution"]["by"] == mgr.user_id

    # The resolutions reach the phone like any change.
    changes = {(c["collection"], c["record_id"]): c for c in phone.sync_down()}
    assert changes[("contracts", k_local)]["fields"]["amount"] == 300.0
    assert changes[("contracts", k_value)]["fields"]["amount"] == 250.0
    assert phone.records[("contracts", k_remote)]["amount"] == 200.0
    for conflict_id in (local_id, remote_id, value_id):
        assert changes[("_conflicts", conflict_id)]["fields"]["status"] == "resolved"

    assert mgr.get("/v1/manager/conflicts").json()["total"] == 0
    assert mgr.get("/v1/manager/conflicts", params={"status": "resolved"}).json()["total"] == 3
    again = mgr.post(f"/v1/manager/conflicts/{local_id}/resolve", json={"choice": "local"})
    assert again.status_code == 409
    assert (
        mgr.post("/v1/manager/conflicts/cf-nope/resolve", json={"choice": "local"}).status_code
        == 404
    )
