"""The protocol, exchange by exchange, against the fake and the real server alike.

Each test speaks raw JSON (``wire.Device``) and checks the answer the protocol
prescribes (docs/protocol.md). A behaviour the two servers disagree on fails here: the
first such disagreement was a write that changed nothing, answered ``merged`` by the fake
and ``applied`` by the server (now one rule, ``sync_protocol.mutation_result``).
"""

from __future__ import annotations

from sync_protocol import CRM_SCHEMA, ConflictRecord

from .conftest import MakeDevice
from .wire import PASSWORD, uid


def test_sign_in_answers_tokens_for_the_user_and_refuses_a_wrong_password(
    device: MakeDevice,
) -> None:
    phone = device()
    assert phone.tokens["token_type"] == "bearer" and phone.tokens["expires_in"] > 0
    assert phone.tokens["user"]["username"] == "rep1"
    wrong = phone.send("POST", "/v1/auth/login", phone.credentials("not it"), auth=False)
    assert wrong.status == 401 and wrong.json()["error"]["code"] == "unauthorized"


def test_a_bad_token_is_refused_and_a_refresh_rotates_the_tokens(device: MakeDevice) -> None:
    phone = device()
    old = dict(phone.tokens)
    phone.tokens["access_token"] = "not-a-token"
    refused = phone.send("POST", "/v1/sync/pull", {"device_id": phone.id, "schema_version": 1})
    assert refused.status == 401
    body = {"refresh_token": old["refresh_token"], "device_id": phone.id}
    fresh = phone.send("POST", "/v1/auth/refresh", body, auth=False)
    assert fresh.status == 200 and fresh.json()["refresh_token"] != old["refresh_token"]
    phone.tokens = fresh.json()
    assert phone.pull()["has_more"] in (True, False)


def test_a_new_record_is_applied_then_pulled_with_its_version(device: MakeDevice) -> None:
    phone, other = device(), device()
    rid, version = phone.customer(city="Xi'an")
    changes, _ = other.pull_all()
    change = changes[("customers", rid)]
    assert change["op"] == "upsert" and change["version"] == version
    assert change["fields"]["city"] == "Xi'an" and change["fields"]["owner_id"] == "u-rep1"


def test_a_retried_push_answers_duplicate_with_the_first_answer(device: MakeDevice) -> None:
    phone = device()
    m = phone.mutation("customers", uid(), {"name": uid("n"), "status": "potential"})
    (first,) = phone.push(m)
    (again,) = phone.push(m)
    assert first["status"] == "applied" and again["status"] == "duplicate"
    assert again["version"] == first["version"]


def test_rewriting_a_value_the_server_already_holds_is_applied_not_merged(
    device: MakeDevice,
) -> None:
    phone = device()
    rid, version = phone.customer(city="Lhasa")
    same = phone.mutation(
        "customers", rid, {"city": "Lhasa"}, base_version=version, base={"city": "Lhasa"}
    )
    (result,) = phone.push(same)
    assert result["status"] == "applied" and result.get("record") is None
    assert result["version"] == version  # nothing changed: no new version


def test_a_superseded_write_is_merged_and_carries_the_servers_record(
    device: MakeDevice,
) -> None:
    phone, other = device(), device()
    rid, version = phone.customer(city="Old")
    stale = phone.mutation("customers", rid, {"city": "Mine"}, base_version=version)
    wall = int(stale["hlc"].split(":")[0]) - 1000  # made a second before the other write
    stale["hlc"] = f"{wall:015d}:00000:{phone.id}"
    (later,) = other.push(
        other.mutation("customers", rid, {"city": "Theirs"}, base_version=version)
    )
    assert later["status"] == "applied"
    (result,) = phone.push(stale)  # older HLC than the other device's write: lww loses
    assert result["status"] == "merged" and result["record"]["city"] == "Theirs"


def test_a_concurrent_manual_edit_opens_a_conflict_that_syncs_and_resolves(
    device: MakeDevice,
) -> None:
    a, b = device(), device()
    customer, _ = a.customer()
    contract = uid("k")
    fields = {"customer_id": customer, "number": contract, "status": "draft", "amount": 100}
    (made,) = a.push(a.mutation("contracts", contract, fields))
    version = made["version"]
    (first,) = a.push(
        a.mutation(
            "contracts", contract, {"amount": 120}, base_version=version, base={"amount": 100}
        )
    )
    assert first["status"] == "applied"
    (second,) = b.push(
        b.mutation(
            "contracts", contract, {"amount": 150}, base_version=version, base={"amount": 100}
        )
    )
    assert second["status"] == "conflict" and second["record"]["amount"] == 120
    (cid,) = second["conflict_ids"]
    changes, checkpoint = a.pull_all()
    found = ConflictRecord.read(changes[("_conflicts", cid)]["fields"])
    assert found is not None and found.status == "open"
    assert (found.field, found.base, found.local, found.remote) == ("amount", 100, 150, 120)
    assert (found.collection, found.record_id, found.kind) == ("contracts", contract, "field")

    record_version = changes[("contracts", contract)]["version"]
    (resolved,) = a.push(
        a.mutation(
            "contracts",
            contract,
            {"amount": 135},
            base_version=record_version,
            base={"amount": 120},
            resolves=[cid],
        )
    )
    assert resolved["status"] == "applied"
    after, _ = a.pull_all(checkpoint)
    closed = ConflictRecord.read(after[("_conflicts", cid)]["fields"])
    assert closed is not None and closed.status == "resolved"
    assert after[("contracts", contract)]["fields"]["amount"] == 135


def test_one_bad_mutation_is_rejected_alone(device: MakeDevice) -> None:
    phone = device()
    good, later = uid(), uid()
    results = phone.push(
        phone.mutation("customers", good, {"name": uid("n"), "status": "potential"}),
        phone.mutation("no_such_things", uid(), {"x": 1}),
        phone.mutation("customers", uid(), {"name": uid("n"), "status": "not-a-status"}),
        phone.mutation("customers", later, {"name": uid("n"), "status": "potential"}),
    )
    assert [r["status"] for r in results] == ["applied", "rejected", "rejected", "applied"]
    assert results[1]["error"]["code"] == "unknown_collection"
    assert results[2]["error"]["code"] == "validation_failed"
    assert results[2]["error"]["details"]["fields"][0]["field"] == "status"
    changes, _ = phone.pull_all()
    assert ("customers", good) in changes and ("customers", later) in changes


def test_a_group_applies_all_or_nothing(device: MakeDevice) -> None:
    phone = device()
    customer, contract, group = uid("cust"), uid("k"), uid("g")
    bad = phone.push(
        phone.mutation(
            "customers", customer, {"name": uid("n"), "status": "potential"}, group=group
        ),
        phone.mutation(
            "contracts", contract, {"customer_id": customer, "number": "x"}, group=group
        ),  # no status: invalid
    )
    assert [r["status"] for r in bad] == ["rejected", "rejected"]
    assert bad[0]["error"]["code"] == "group_rejected"
    assert bad[0]["error"]["details"] == {
        "group": group,
        "failed_mutation_id": bad[1]["mutation_id"],
    }
    assert bad[1]["error"]["code"] == "validation_failed"
    changes, _ = phone.pull_all()
    assert ("customers", customer) not in changes and ("contracts", contract) not in changes

    group = uid("g")
    members = (
        phone.mutation(
            "customers", customer, {"name": uid("n"), "status": "potential"}, group=group
        ),
        phone.mutation(
            "contracts",
            contract,
            {"customer_id": customer, "number": "x", "status": "draft"},
            group=group,
        ),
    )
    assert [r["status"] for r in phone.push(*members)] == ["applied", "applied"]
    assert [r["status"] for r in phone.push(*members)] == ["duplicate", "duplicate"]


def test_append_only_records_are_never_changed(device: MakeDevice) -> None:
    phone = device()
    customer, _ = phone.customer()
    visit = uid("act")
    fields = {"customer_id": customer, "type": "visit", "occurred_at": "2026-11-23T09:30:00+00:00"}
    (made,) = phone.push(phone.mutation("activities", visit, fields))
    assert made["status"] == "applied"
    (edit,) = phone.push(
        phone.mutation("activities", visit, {"subject": "x"}, base_version=made["version"])
    )
    assert edit["status"] == "rejected" and edit["error"]["code"] == "append_only"


def test_a_delete_is_pulled_as_a_delete(device: MakeDevice) -> None:
    phone, other = device(), device()
    rid, version = phone.customer()
    _, checkpoint = other.pull_all()
    (gone,) = phone.push(phone.mutation("customers", rid, op="delete", base_version=version))
    assert gone["status"] == "applied"
    changes, _ = other.pull_all(checkpoint)
    assert changes[("customers", rid)]["op"] == "delete"
    assert changes[("customers", rid)].get("fields") is None


def test_pull_pages_follow_the_checkpoint_until_nothing_is_left(device: MakeDevice) -> None:
    phone, other = device(), device()
    _, checkpoint = other.pull_all()
    made = {phone.customer()[0] for _ in range(5)}
    seen, pages = set(), 0
    while True:
        page = other.pull(checkpoint, limit=2)
        pages += 1
        assert len(page["changes"]) <= 2
        versions = [c["version"] for c in page["changes"]]
        assert versions == sorted(versions)
        seen.update(c["record_id"] for c in page["changes"])
        checkpoint = page["checkpoint"]
        if not page["has_more"]:
            break
    assert made <= seen and pages >= 3
    assert other.pull(checkpoint)["changes"] == []


def test_requests_are_strict(device: MakeDevice) -> None:
    phone = device()
    m = phone.mutation("customers", uid(), {"name": uid("n"), "status": "potential"})
    answer = phone.push_raw({**m, "surprise": True})
    assert answer.status == 422 and answer.json()["error"]["code"] == "validation_failed"


def test_another_apps_schema_is_refused_and_the_servers_own_accepted(
    device: MakeDevice,
) -> None:
    phone = device()
    m = phone.mutation("customers", uid(), {"name": uid("n"), "status": "potential"})
    base = {"protocol": 1, "device_id": phone.id, "schema_version": 1}
    for path, body in (
        ("/v1/sync/push", {**base, "schema_name": "inspections", "mutations": [m]}),
        ("/v1/sync/pull", {**base, "schema_name": "inspections", "checkpoint": None}),
    ):
        answer = phone.send("POST", path, body)
        assert answer.status == 409, answer.content
        error = answer.json()["error"]
        assert error["code"] == "schema_mismatch"
        assert error["details"] == {"client": "inspections", "served": CRM_SCHEMA.name}
    seen, _ = phone.pull_all()  # nothing of the refused push was applied
    assert ("customers", m["record_id"]) not in seen
    named = {**base, "schema_name": CRM_SCHEMA.name, "mutations": [m]}
    assert phone.send("POST", "/v1/sync/push", named).json()["results"][0]["status"] == "applied"


def test_a_device_id_belongs_to_the_user_who_registered_it(device: MakeDevice) -> None:
    phone = device("rep1")
    taken = phone.send(
        "POST",
        "/v1/auth/login",
        {"username": "rep2", "password": PASSWORD, "device_id": phone.id},
        auth=False,
    )
    assert taken.status == 409 and taken.json()["error"]["code"] == "device_id_taken"


def test_idempotency_is_per_device_and_checks_what_was_sent(device: MakeDevice) -> None:
    a, b = device(), device()
    rid = uid()
    m = a.mutation("customers", rid, {"name": uid("n"), "status": "potential"})
    (first,) = a.push(m)
    (reused,) = a.push({**m, "fields": {**m["fields"], "city": "Elsewhere"}})
    assert first["status"] == "applied"
    assert reused["status"] == "rejected" and reused["error"]["code"] == "mutation_id_reused"
    changes, _ = a.pull_all()
    assert "city" not in changes[("customers", rid)]["fields"]  # nothing changed
    other = {**b.mutation("customers", uid(), {"name": uid("n"), "status": "potential"})}
    other["id"] = m["id"]  # another device may pick the same id: they never meet
    (mine,) = b.push(other)
    assert mine["status"] == "applied"
