"""The SDK side of the round-2 contracts: mutation groups (1), the device status report
(3), revoke and the offline lease (4), nothing lost (5), and request compression."""

from __future__ import annotations

import gzip
import json
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from client_sdk import (
    FAST_KDF,
    Attachments,
    BackgroundSync,
    HttpTransport,
    ManualClock,
    MockTransport,
    RecordsChanged,
    Store,
    StoreClosed,
    StoreLocked,
    StoreWiped,
    SyncClient,
    SyncConfig,
    TransportRequest,
    TransportResponse,
    UnsentWork,
    WouldLoseWork,
)
from client_sdk.testing import FakeServer
from sync_protocol import CRM_SCHEMA

from .conftest import FAST, PASSPHRASE, MakeStore, no_sleep, take_batch

DAY = 86_400.0


def _recording(server: FakeServer) -> tuple[MockTransport, list[TransportRequest]]:
    sent: list[TransportRequest] = []

    def handler(request: TransportRequest) -> TransportResponse:
        sent.append(request)
        return server.handle(request)

    return MockTransport(handler), sent


# -- contract 1: mutation groups ----------------------------------------------------------
def test_writes_in_a_group_share_one_id_and_one_push(store: Store, server: FakeServer) -> None:
    transport, sent = _recording(server)
    client = SyncClient(store, transport, SyncConfig(sleep=no_sleep, push_batch=1))
    client.login("rep1", "fieldsync-demo")
    store.collection("customers").insert({"name": "Before", "status": "potential"})
    with store.group() as group_id:
        customer = store.collection("customers").insert({"name": "Lead Co", "status": "intent"})
        with store.group() as inner:  # nested: the same group
            assert inner == group_id
            store.collection("contracts").insert(
                {"customer_id": customer.id, "number": "HT-1", "status": "draft"}
            )
    store.collection("customers").insert({"name": "After", "status": "potential"})
    client.push()
    batches = [
        [(m["collection"], m.get("group")) for m in r.body["mutations"]]
        for r in sent
        if r.path == "/v1/sync/push"
    ]
    assert batches == [
        [("customers", None)],
        [("customers", group_id), ("contracts", group_id)],  # push_batch=1, yet one batch
        [("customers", None)],
    ]


def test_a_group_that_raises_saves_none_of_its_writes(store: Store) -> None:
    events: list[Any] = []
    store.subscribe(events.append)
    customers = store.collection("customers")
    kept = customers.insert({"name": "Kept", "status": "potential"})
    events.clear()
    with pytest.raises(RuntimeError), store.group():
        customers.insert({"name": "Half", "status": "potential"})
        customers.update(kept.id, {"city": "Never"})
        raise RuntimeError("the app failed midway")
    assert customers.count() == 1 and customers[kept.id].get("city") is None
    assert store.status().pending_total == 1
    assert events == []  # nothing was published for writes that never happened
    with store.group():
        customers.update(kept.id, {"city": "Saved"})
        assert events == []  # published when the group commits...
    assert [type(e) for e in events] == [RecordsChanged]  # ...and then


def test_a_refused_group_becomes_dead_letters_retried_together(
    store: Store, server: FakeServer
) -> None:
    client = SyncClient(store, server.transport(), FAST)
    client.login("rep1", "fieldsync-demo")
    with store.group() as group_id:
        customer = store.collection("customers").insert({"name": "Co", "status": "intent"})
        contract = store.collection("contracts").insert(
            {"customer_id": customer.id, "number": "HT-9", "status": "draft"}
        )
    server.evict("contracts", contract.id)  # the server will refuse the contract
    report = client.sync()
    assert report.rejected == 2 and server.fields("customers", customer.id) is None
    letters = {d.record_id: d for d in store.dead_letters()}
    assert letters[contract.id].code == "forbidden"
    assert letters[customer.id].code == "group_rejected"
    assert letters[customer.id].error["details"]["failed_mutation_id"] == letters[contract.id].id
    assert {d.group for d in letters.values()} == {group_id}
    del server.evicted[("contracts", contract.id)]
    store.retry_dead_letter(letters[customer.id].id)  # the whole group comes back
    assert store.dead_letters() == []
    (first, second) = take_batch(store, 1)
    assert first.group == second.group and first.group not in (None, group_id)
    client.sync()
    assert server.fields("customers", customer.id) and server.fields("contracts", contract.id)


# -- contract 3: the device status report ----------------------------------------------------
def test_every_push_and_pull_reports_the_device_status(store: Store, server: FakeServer) -> None:
    transport, sent = _recording(server)
    client = SyncClient(store, transport, SyncConfig(sleep=no_sleep, app_version="2.1"))
    client.login("rep1", "fieldsync-demo", device_name="Pixel 7")
    store.collection("customers").insert({"name": "A", "status": "potential"})
    transport.offline = True
    with pytest.raises(Exception):  # noqa: B017 - NetworkError after the retries
        client.sync()
    transport.offline = False
    client.sync()
    push, pull = (next(r for r in sent if r.path == p) for p in ("/v1/sync/push", "/v1/sync/pull"))
    status = push.body["device_status"]
    assert status["pending_count"] == 1 and status["dead_letters"] == 0
    assert status["failed_attempts"] == 1 and status["last_error_code"] == "network"
    assert (status["app_version"], status["device_name"]) == ("2.1", "Pixel 7")
    assert status["platform"] == "python" and status["schema_version"] == CRM_SCHEMA.version
    assert abs(status["device_clock_ms"] - time.time() * 1000) < 60_000
    assert pull.body["device_status"]["pending_count"] == 0  # the push drained it
    client.sync()
    last_pull = [r for r in sent if r.path == "/v1/sync/pull"][-1]
    assert last_pull.body["device_status"]["failed_attempts"] == 0


# -- contract 4: the offline lease ----------------------------------------------------------
def test_past_the_offline_lease_the_store_locks_until_a_sync_succeeds(
    make_store: MakeStore, tmp_path: Path
) -> None:
    server = FakeServer(offline_lease_days=3)
    clock = ManualClock(time.time())
    store = make_store("lease.db", clock=clock)
    client = SyncClient(store, server.transport(), FAST)
    client.login("rep1", "fieldsync-demo")
    customers = store.collection("customers")
    rec = customers.insert({"name": "Offline work", "status": "potential"})
    clock.advance(2.9 * DAY)
    assert customers[rec.id]["name"] == "Offline work"  # within the lease
    clock.advance(0.2 * DAY)
    with pytest.raises(StoreLocked):
        customers.get(rec.id)
    with pytest.raises(StoreLocked):
        customers.insert({"name": "More", "status": "potential"})
    with pytest.raises(StoreLocked):
        store.export_unsent(tmp_path / "x.zip")
    assert store.status().locked and store.unsent_work() == UnsentWork(pending_writes=1)
    store.close()  # the lock survives a restart: it is kept in the store
    store = Store.open(tmp_path / "lease.db", PASSPHRASE, schema=CRM_SCHEMA, clock=clock)
    with pytest.raises(StoreLocked):
        store.collection("customers").count()
    client = SyncClient(store, server.transport(), FAST)
    client.sync()  # reaching the server online unlocks it
    assert not store.status().locked
    assert store.collection("customers")[rec.id].pending is False
    store.close()


# -- contract 5: nothing lost -----------------------------------------------------------------
def test_unsent_work_and_its_export(make_store: MakeStore, tmp_path: Path) -> None:
    store = make_store("work.db")
    assert store.unsent_work() == UnsentWork() and not store.unsent_work()
    store.collection("customers").insert({"name": "王五", "status": "potential"})
    photo = Attachments(store).add("activities", "visit-1", b"\xff\xd8 jpeg bytes", "photo")
    work = store.unsent_work()
    assert work == UnsentWork(pending_writes=1, unsent_photos=1) and work
    with pytest.raises(WouldLoseWork) as refused:
        store.wipe()
    assert refused.value.work == work
    path = store.export_unsent(tmp_path / "unsent.zip")
    with zipfile.ZipFile(path) as archive:
        document = json.loads(archive.read("unsent.json"))
        (entry,) = document["unsent_photos"]
        assert archive.read(entry["file"]) == b"\xff\xd8 jpeg bytes"
    assert document["format"] == "fieldsync-unsent/1"
    assert [w["fields"]["name"] for w in document["pending_writes"]] == ["王五"]
    assert entry["id"] == photo.id and entry["sha256"] == photo.sha256
    store.wipe(force=True)
    assert not Path(f"{tmp_path / 'work.db'}.attachments").exists()


def test_a_wipe_during_a_background_sync_leaves_a_clean_reopenable_store(
    make_store: MakeStore, server: FakeServer, tmp_path: Path
) -> None:
    store = make_store("busy.db")
    for i in range(300):
        server.put("customers", f"c{i:03}", {"name": f"N{i}", "status": "potential"})
    entered, release = threading.Event(), threading.Event()

    def slow(request: TransportRequest) -> TransportResponse:
        if request.path == "/v1/sync/pull":
            entered.set()
            release.wait(10)
        return server.handle(request)

    client = SyncClient(store, MockTransport(slow), SyncConfig(sleep=no_sleep, pull_limit=50))
    client.login("rep1", "fieldsync-demo")
    events: list[Any] = []
    store.subscribe(events.append)
    runner = BackgroundSync(client, interval_s=3600)
    runner.start()
    try:
        assert entered.wait(10)  # a pull is in flight
        store.wipe(force=True)
        release.set()
        for _ in range(200):
            if not runner.running:
                break
            time.sleep(0.02)
        assert not runner.running  # the runner stopped by itself, nothing crashed
        assert isinstance(runner.last_exception, StoreClosed)
    finally:
        release.set()
        runner.stop()
    assert StoreWiped("wipe") in events
    assert not any(p.name.startswith("busy.db") for p in tmp_path.iterdir())
    with pytest.raises(StoreClosed):
        store.status()
    again = Store.open(tmp_path / "busy.db", PASSPHRASE, schema=CRM_SCHEMA, kdf=FAST_KDF)
    assert again.collection("customers").count() == 0 and again.unsent_work().empty
    again.close()


# -- request compression --------------------------------------------------------------------
def test_large_json_bodies_travel_gzip_compressed() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    client = httpx.Client(base_url="http://sync.test", transport=httpx.MockTransport(handler))
    transport = HttpTransport(client=client)
    big = {"mutations": [{"name": "客户" * 40, "i": i} for i in range(40)]}
    transport.send(TransportRequest("POST", "/v1/sync/push", big))
    transport.send(TransportRequest("POST", "/v1/sync/pull", {"checkpoint": None}))
    transport.send(TransportRequest("PUT", "/v1/attachments/a/chunks/0", content=b"\x00" * 4096))
    push, pull, chunk = seen
    assert push.headers["content-encoding"] == "gzip"
    assert json.loads(gzip.decompress(push.content)) == big
    assert len(push.content) < len(json.dumps(big, ensure_ascii=False).encode()) / 3
    assert "content-encoding" not in pull.headers  # small: sent as is
    assert "content-encoding" not in chunk.headers and chunk.content == b"\x00" * 4096
    assert chunk.headers["content-type"] == "application/octet-stream"
