"""Push and pull through the HTTP API (TestClient), on SQLite and PostgreSQL."""

from __future__ import annotations

import gzip
import json

from sqlalchemy import func, select

from server.models import AppliedMutation, AuditEntry, Record
from tests.server.conftest import World, customer_fields, new_id


def test_push_then_pull_round_trip_on_two_devices(world: World) -> None:
    a = world.phone("rep_a1")
    b = world.phone("rep_a1")
    cid = new_id("c")
    result = a.push_one("customers", cid, customer_fields("张三"))
    assert result["status"] == "applied"
    assert result["version"] >= 1
    b.sync_down()
    assert b.records[("customers", cid)]["name"] == "张三"
    # The server set the owner; the device never sends it.
    assert b.records[("customers", cid)]["owner_id"] == world.users["rep_a1"]
    assert b.versions[("customers", cid)] == result["version"]


def test_retried_mutation_answers_duplicate_with_the_original_result(world: World) -> None:
    phone = world.phone("rep_a1")
    good = phone.mutation("customers", new_id("c"), customer_fields())
    bad = phone.mutation("customers", new_id("c"), {"name": "no status"})
    first = phone.push([good, bad])
    again = phone.push([good, bad])
    assert [r["status"] for r in first] == ["applied", "rejected"]
    assert [r["status"] for r in again] == ["duplicate", "duplicate"]
    assert again[0]["version"] == first[0]["version"]
    assert again[1]["error"] == first[1]["error"]
    with world.context.sessions() as s:
        assert s.scalar(select(func.count()).select_from(AppliedMutation)) == 2
        rows = s.scalar(
            select(func.count()).select_from(Record).where(Record.collection == "customers")
        )
        assert rows == 1
        audited = s.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action.like("mutation.%"))
        )
        assert audited == 2


def test_batch_of_100_with_3_invalid_applies_97_and_rejects_3(world: World) -> None:
    phone = world.phone("rep_a1")
    mutations = [
        phone.mutation("customers", f"c-batch-{i:03d}", customer_fields(f"客户{i}"))
        for i in range(100)
    ]
    mutations[10] = phone.mutation("customers", "c-batch-bad1", {"name": "x", "status": "nope"})
    mutations[50] = phone.mutation("no_such_things", "c-batch-bad2", {"name": "x"})
    mutations[90] = phone.mutation(
        "contacts", "c-batch-bad3", {"customer_id": "not-mine", "name": "x"}
    )
    results = phone.push(mutations)
    statuses = [r["status"] for r in results]
    assert statuses.count("applied") == 97
    rejected = {i: r["error"]["code"] for i, r in enumerate(results) if r["status"] == "rejected"}
    assert rejected == {10: "validation_failed", 50: "unknown_collection", 90: "forbidden"}
    assert results[10]["error"]["details"]["fields"][0]["field"] == "status"
    with world.context.sessions() as s:
        ids = set(s.scalars(select(Record.record_id)))
    assert len(ids) == 97
    assert not ids & {"c-batch-bad1", "c-batch-bad2", "c-batch-bad3"}
    other = world.phone("rep_a1")
    other.sync_down()
    assert len(other.records) == 97


def test_pull_pages_with_checkpoint_has_more_and_remaining(world: World) -> None:
    phone = world.phone("rep_a1")
    phone.push(
        [phone.mutation("customers", f"c-page-{i:02d}", customer_fields()) for i in range(25)]
    )
    reader = world.phone("rep_a1")
    first = reader.pull_raw(None, limit=10).json()
    assert len(first["changes"]) == 10 and first["has_more"] is True
    assert first["remaining"] == 15
    versions = [c["version"] for c in first["changes"]]
    assert versions == sorted(versions)
    second = reader.pull_raw(first["checkpoint"], limit=10).json()
    assert second["changes"][0]["version"] > versions[-1]
    assert second["remaining"] is None
    reader.checkpoint = second["checkpoint"]
    reader.sync_down(limit=10)
    assert len(reader.records) == 5  # the last page (the first two were read raw)
    empty = reader.pull_raw(reader.checkpoint).json()
    assert empty["changes"] == [] and empty["has_more"] is False
    assert empty["checkpoint"] == reader.checkpoint


def test_delete_reaches_other_devices_as_tombstone(world: World) -> None:
    a, b = world.phone("rep_a1"), world.phone("rep_a1")
    cid = new_id("c")
    v = a.push_one("customers", cid, customer_fields())["version"]
    b.sync_down()
    gone = a.push_one("customers", cid, op="delete", base_version=v)
    assert gone["status"] == "applied" and gone["version"] > v
    changes = b.sync_down()
    assert [c["op"] for c in changes] == ["delete"]
    assert ("customers", cid) not in b.records


def test_concurrent_edits_of_different_fields_both_win(world: World) -> None:
    a, b = world.phone("rep_a1"), world.phone("rep_a1")
    cid = new_id("c")
    v = a.push_one("customers", cid, customer_fields())["version"]
    a.push_one("customers", cid, {"city": "上海"}, base_version=v)
    result = b.push_one("customers", cid, {"tier": "high"}, base_version=v)
    assert result["status"] == "applied"
    reader = world.phone("rep_a1")
    reader.sync_down()
    rec = reader.records[("customers", cid)]
    assert (rec["city"], rec["tier"]) == ("上海", "high")


def test_manual_conflict_is_stored_pulled_and_resolved(world: World) -> None:
    a, b = world.phone("rep_a1"), world.phone("rep_a1")
    cid, kid = new_id("c"), new_id("k")
    a.push_one("customers", cid, customer_fields())
    contract = {"customer_id": cid, "number": "HT-1", "status": "draft", "amount": 100.0}
    v = a.push_one("contracts", kid, contract)["version"]
    a.push_one("contracts", kid, {"amount": 200.0}, base_version=v, base={"amount": 100.0})
    result = b.push_one("contracts", kid, {"amount": 300.0}, base_version=v, base={"amount": 100.0})
    assert result["status"] == "conflict"
    assert len(result["conflict_ids"]) == 1
    conflict_id = result["conflict_ids"][0]
    manager = world.phone("mgr_a")
    manager.sync_down()
    conflict = manager.records[("_conflicts", conflict_id)]
    assert (conflict["base"], conflict["local"], conflict["remote"]) == (100.0, 300.0, 200.0)
    assert conflict["status"] == "open" and conflict["field"] == "amount"
    assert manager.records[("contracts", kid)]["amount"] == 200.0
    # The device resolves by writing the record with `resolves`.
    b.sync_down()
    current = b.versions[("contracts", kid)]
    done = b.push_one(
        "contracts", kid, {"amount": 300.0}, base_version=current, resolves=[conflict_id]
    )
    assert done["status"] == "applied"
    manager.sync_down()
    assert manager.records[("contracts", kid)]["amount"] == 300.0
    resolved = manager.records[("_conflicts", conflict_id)]
    assert resolved["status"] == "resolved"
    assert resolved["resolution"]["value"] == 300.0
    # Other teams never see the conflict.
    outsider = world.phone("rep_b1")
    outsider.sync_down()
    assert ("_conflicts", conflict_id) not in outsider.records


def test_append_only_read_only_and_unknown_fields_are_rejected(world: World) -> None:
    phone = world.phone("rep_a1")
    cid, aid = new_id("c"), new_id("a")
    phone.push_one("customers", cid, customer_fields())
    visit = {
        "customer_id": cid,
        "type": "visit",
        "occurred_at": "2026-11-23T10:00:00Z",
        "check_in": {"lat": 31.23, "lon": 121.47},
    }
    assert phone.push_one("activities", aid, visit)["status"] == "applied"
    results = phone.push(
        [
            phone.mutation("activities", aid, {"subject": "edit"}, base_version=1),
            phone.mutation("activities", aid, op="delete"),
            phone.mutation("customers", cid, {"owner_id": "u-rep_a2"}),
            phone.mutation("customers", cid, {"favourite_colour": "blue"}),
            phone.mutation("_conflicts", "cf-x", {"status": "resolved"}),
        ]
    )
    codes = [r["error"]["code"] for r in results]
    assert codes == [
        "append_only",
        "append_only",
        "validation_failed",
        "validation_failed",
        "forbidden",
    ]
    assert results[2]["error"]["details"]["fields"][0]["code"] == "read_only"
    assert results[3]["error"]["details"]["fields"][0]["code"] == "unknown_field"


def test_gzip_request_and_response(world: World) -> None:
    phone = world.phone("rep_a1")
    body = {
        "device_id": phone.device_id,
        "schema_version": 1,
        "mutations": [
            phone.mutation("customers", f"c-gz-{i}", customer_fields("王伟" * 20))
            for i in range(20)
        ],
    }
    response = world.client.post(
        "/v1/sync/push",
        content=gzip.compress(json.dumps(body).encode()),
        headers={**phone.headers, "Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert {r["status"] for r in response.json()["results"]} == {"applied"}
    pulled = phone.pull_raw(None)
    assert pulled.headers["content-encoding"] == "gzip"
    assert len(pulled.json()["changes"]) == 20
    broken = world.client.post(
        "/v1/sync/push",
        content=b"not gzip at all",
        headers={**phone.headers, "Content-Encoding": "gzip"},
    )
    assert broken.status_code == 422
    assert broken.json()["error"]["code"] == "validation_failed"


def test_request_level_errors_have_codes_and_statuses(world: World) -> None:
    phone = world.phone("rep_a1")
    too_many = [phone.mutation("customers", f"c-{i}", customer_fields()) for i in range(1001)]
    big = phone.push_raw(too_many)
    assert (big.status_code, big.json()["error"]["code"]) == (413, "batch_too_large")
    old = phone.push_raw([], protocol=99)
    assert (old.status_code, old.json()["error"]["code"]) == (426, "protocol_unsupported")
    assert old.json()["error"]["details"]["supported"] == {"min": 1, "max": 1}
    malformed = world.client.post(
        "/v1/sync/push", json={"device_id": phone.device_id}, headers=phone.headers
    )
    assert (malformed.status_code, malformed.json()["error"]["code"]) == (
        422,
        "validation_failed",
    )
    wrong_device = world.client.post(
        "/v1/sync/pull",
        json={"device_id": "someone-else", "schema_version": 1},
        headers=phone.headers,
    )
    assert wrong_device.status_code == 403
    bad_checkpoint = phone.pull_raw("v9:banana")
    assert bad_checkpoint.status_code == 422


def test_clock_far_ahead_is_clamped_with_a_warning(world: World) -> None:
    phone = world.phone("rep_a1")
    m = phone.mutation("customers", new_id("c"), customer_fields())
    m["hlc"] = "009999999999999:00000:" + phone.device_id
    response = phone.push_raw([m])
    assert response.status_code == 200
    body = response.json()
    assert body["results"][0]["status"] == "applied"
    assert body["warnings"][0]["code"] == "clock_skew"
    assert body["server_hlc"] < "009999999999999"


def test_info_schema_and_health(world: World) -> None:
    info = world.client.get("/v1/sync/info").json()
    assert info["protocol"] == {"min": 1, "max": 1}
    assert info["limits"]["max_batch"] == 1000
    schema = world.client.get("/v1/sync/schema").json()
    assert schema["entities"]["customers"]["fields"]["owner_id"]["read_only"] is True
    assert world.client.get("/healthz").json() == {"status": "ok"}
    assert world.client.get("/openapi.json").status_code == 200
