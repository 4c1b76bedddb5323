"""Local writes and reads: validation, optimistic views, unknown fields, query and search."""

from __future__ import annotations

from typing import Any

import pytest

from client_sdk import (
    ManualClock,
    NotAllowed,
    Record,
    RecordNotFound,
    RecordsChanged,
    Store,
    SyncClient,
)
from client_sdk.testing import FakeServer
from sync_protocol import CRM_SCHEMA, ValidationFailed

from .conftest import FAST, MakeStore, take_batch


def test_insert_is_visible_immediately_and_pending(store: Store) -> None:
    customers = store.collection("customers")
    rec = customers.insert({"name": "张三", "status": "potential"})
    assert rec.pending and rec.version is None
    assert customers.get(rec.id) == rec
    assert customers.count() == 1
    assert store.status().pending_by_collection == {"customers": 1}


def test_invalid_write_is_refused_with_field_errors(store: Store) -> None:
    customers = store.collection("customers")
    with pytest.raises(ValidationFailed) as info:
        customers.insert({"status": "maybe", "phone": "call me"})
    fields = {e.field: e.code for e in info.value.errors}
    assert fields == {"status": "invalid_choice", "phone": "invalid_phone", "name": "required"}
    assert customers.count() == 0 and store.status().pending_total == 0
    rec = customers.insert({"name": "A", "status": "potential"})
    with pytest.raises(ValidationFailed) as info:
        customers.update(rec.id, {"owner_id": "u-2"})
    assert info.value.errors[0].code == "read_only"
    with pytest.raises(ValidationFailed):
        customers.update(rec.id, {"no_such_field": 1})


def test_append_only_entities_refuse_update_and_delete(store: Store) -> None:
    activities = store.collection("activities")
    rec = activities.insert(
        {"customer_id": "c1", "type": "call", "occurred_at": "2026-11-23T10:00:00+08:00"}
    )
    with pytest.raises(NotAllowed):
        activities.update(rec.id, {"subject": "x"})
    with pytest.raises(NotAllowed):
        activities.delete(rec.id)


def test_update_patches_and_delete_of_unsent_record_leaves_no_trace(store: Store) -> None:
    customers = store.collection("customers")
    rec = customers.insert({"name": "A", "status": "potential"})
    updated = customers.update(rec.id, {"city": "Chengdu"})
    assert updated.fields == {"name": "A", "status": "potential", "city": "Chengdu"}
    assert customers.update(rec.id, {"city": "Chengdu"}) == updated  # no-op change
    customers.delete(rec.id)
    assert customers.get(rec.id) is None
    assert store.status().pending_total == 0  # never reached the server: nothing to send
    with pytest.raises(RecordNotFound):
        customers.update(rec.id, {"city": "X"})


def test_unsent_edits_coalesce_sent_ones_do_not(store: Store, server: FakeServer) -> None:
    client = SyncClient(store, server.transport(), FAST)
    client.login("rep1", "fieldsync-demo")
    customers = store.collection("customers")
    rec = customers.insert({"name": "A", "status": "potential"})
    customers.update(rec.id, {"city": "X"})
    customers.update(rec.id, {"tier": "high"})
    assert store.status().pending_total == 1  # one mutation, not three
    client.sync()
    customers.update(rec.id, {"city": "Y"})
    take_batch(store, 10)  # marks it sent (as a push in flight would)
    customers.update(rec.id, {"city": "Z"})
    assert store.status().pending_total == 2
    client.sync()
    assert server.fields("customers", rec.id) == {
        "name": "A",
        "status": "potential",
        "city": "Z",
        "tier": "high",
        "owner_id": "u-rep1",
    }


def test_mutations_carry_patch_base_and_base_version(store: Store, server: FakeServer) -> None:
    client = SyncClient(store, server.transport(), FAST)
    client.login("rep1", "fieldsync-demo")
    customers = store.collection("customers")
    rec = customers.insert({"name": "A", "status": "potential", "city": "X"})
    client.sync()
    customers.update(rec.id, {"city": "Y"})
    from client_sdk._engine.push import to_mutation

    (m,) = [to_mutation(p) for p in take_batch(store, 10)]
    assert m.fields == {"city": "Y"} and m.base == {"city": "X"}
    assert m.base_version == customers[rec.id].version == server.rows[("customers", rec.id)].version


def test_unknown_fields_from_server_are_kept_and_not_resent(
    store: Store, server: FakeServer
) -> None:
    client = SyncClient(store, server.transport(), FAST)
    client.login("rep1", "fieldsync-demo")
    server.put("customers", "c-1", {"name": "A", "status": "potential"})
    # a newer server schema added `wechat`; this client does not know it
    server.rows[("customers", "c-1")].record.fields["wechat"] = "zs_88"
    server.rows[("customers", "c-1")].version = server.put(
        "customers", "tmp", {"name": "t", "status": "potential"}
    )
    client.sync()
    customers = store.collection("customers")
    assert customers["c-1"]["wechat"] == "zs_88"
    rec = customers.update("c-1", {"city": "Xi'an"})
    assert rec["wechat"] == "zs_88"
    (p,) = take_batch(store, 10)
    assert p.fields == {"city": "Xi'an"}
    store.close()


def test_query_filter_sort_limit_offset(store: Store) -> None:
    customers = store.collection("customers")
    rows = [
        ("Chen", "intent", "2026-12-01"),
        ("Anders", "potential", None),
        ("Bo", "intent", "2026-11-30"),
        ("Dai", "closed", "2026-12-05"),
    ]
    for name, status, follow in rows:
        values: dict[str, Any] = {"name": name, "status": status}
        if follow:
            values["next_follow_up"] = follow
        customers.insert(values)

    def names(records: list[Record]) -> list[str]:
        return [r["name"] for r in records]

    assert names(customers.query(where={"status": "intent"}, order_by="name")) == ["Bo", "Chen"]
    assert names(customers.query(order_by="next_follow_up")) == ["Bo", "Chen", "Dai", "Anders"]
    assert names(customers.query(order_by="name", descending=True, limit=2, offset=1)) == [
        "Chen",
        "Bo",
    ]
    assert customers.count(where=lambda r: r["name"].startswith(("A", "B"))) == 2
    assert customers.count({"status": "closed"}) == 1


def test_search_fields_casefold_phone_digits_and_hook(make_store: MakeStore) -> None:
    def keys(collection: str, fields: Any) -> list[str]:
        return ["zhangsan zs"] if fields.get("name") == "张三" else []

    store = make_store("s.db", search_keys=keys)
    customers = store.collection("customers")
    zs = customers.insert(
        {"name": "张三", "status": "potential", "phone": "+86 138-0000-0001", "company": "ACME Ltd"}
    )
    ml = customers.insert({"name": "Müller", "status": "potential", "notes": "acme rival"})
    assert [r.id for r in customers.query(search="acme")] == [zs.id]  # notes not searched
    assert [r.id for r in customers.query(search="13800000001")] == [zs.id]
    assert [r.id for r in customers.query(search="ZS")] == [zs.id]  # the hook's keys
    assert [r.id for r in customers.query(search="MÜLLER")] == [ml.id]
    assert [r.id for r in customers.query(search="acme 张")] == [zs.id]  # all words
    customers.update(ml.id, {"company": "Acme GmbH"})  # the search text follows writes
    assert {r.id for r in customers.query(search="acme")} == {zs.id, ml.id}


def test_views_survive_reopen(make_store: MakeStore, tmp_path: Any) -> None:
    store = make_store("r.db")
    rec = store.collection("customers").insert({"name": "A", "status": "potential"})
    store.collection("customers").update(rec.id, {"city": "Lhasa"})
    store.close()
    again = Store.open(tmp_path / "r.db", "correct horse battery staple", schema=CRM_SCHEMA)
    got = again.collection("customers").get(rec.id)
    assert got is not None and got["city"] == "Lhasa" and got.pending
    again.close()


def test_subscribers_hear_local_writes(store: Store) -> None:
    events: list[Any] = []
    unsubscribe = store.subscribe(events.append)
    rec = store.collection("customers").insert({"name": "A", "status": "potential"})
    assert events == [RecordsChanged("customers", (rec.id,), "local")]
    unsubscribe()
    store.collection("customers").update(rec.id, {"city": "B"})
    assert len(events) == 1


def test_status_ages_pending_writes_with_the_injected_clock(make_store: MakeStore) -> None:
    clock = ManualClock(1_800_000_000.0)
    store = make_store("clock.db", clock=clock)
    assert store.status().oldest_pending_age_s is None
    store.collection("customers").insert({"name": "A", "status": "potential"})
    clock.advance(90)
    store.collection("leads").insert({"name": "L", "status": "new"})
    clock.advance(30)
    status = store.status()
    assert status.oldest_pending_age_s == 120
    assert status.pending_by_collection == {"customers": 1, "leads": 1}
    assert status.pending_total == 2 and not status.online


def test_preload_makes_collections_ready_for_search(make_store: MakeStore, tmp_path: Any) -> None:
    store = make_store("pre.db")
    rec = store.collection("customers").insert({"name": "预载客户", "status": "potential"})
    store.close()
    again = Store.open(tmp_path / "pre.db", "correct horse battery staple", schema=CRM_SCHEMA)
    assert not again._core.views.indexed("customers")
    again.preload(["customers"])
    assert again._core.views.indexed("customers")
    assert [r.id for r in again.collection("customers").query(search="预载")] == [rec.id]
    again.close()
