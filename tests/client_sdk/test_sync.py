"""The sync runner against the in-process FakeServer (protocol logic, failure paths)."""

from __future__ import annotations

import json
import zipfile
from typing import Any

import pytest

from client_sdk import (
    FAST_KDF,
    BackgroundSync,
    DeviceRevoked,
    HttpTransport,
    MockTransport,
    NetworkError,
    Store,
    StoreClosed,
    StoreWiped,
    SyncClient,
    SyncConfig,
    SyncProgress,
    TransportRequest,
    TransportResponse,
    WouldLoseWork,
)
from client_sdk.testing import FakeServer
from sync_protocol import CRM_SCHEMA

from .conftest import FAST, MakeStore, no_sleep


def _client(store: Store, server: FakeServer, **config: Any) -> SyncClient:
    cfg = SyncConfig(sleep=no_sleep, **{"push_batch": 50, "pull_limit": 50, **config})
    client = SyncClient(store, server.transport(), cfg)
    client.login("rep1", "fieldsync-demo")
    return client


def test_push_then_pull_round_trip_between_devices(
    make_store: MakeStore, server: FakeServer
) -> None:
    a, b = make_store("a.db"), make_store("b.db")
    ca, cb = _client(a, server), _client(b, server)
    rec = a.collection("customers").insert({"name": "张三", "status": "potential"})
    report = ca.sync()
    assert (report.pushed, report.applied) == (1, 1)
    assert a.collection("customers")[rec.id].pending is False
    cb.sync()
    assert b.collection("customers")[rec.id]["name"] == "张三"
    status = a.status()
    assert status.online and status.pending_total == 0 and status.last_sync_at is not None


def test_edits_of_different_fields_on_two_devices_both_survive(
    make_store: MakeStore, server: FakeServer
) -> None:
    a, b = make_store("a.db"), make_store("b.db")
    ca, cb = _client(a, server), _client(b, server)
    rec = a.collection("customers").insert({"name": "李四", "status": "potential"})
    ca.sync()
    cb.sync()
    a.collection("customers").update(rec.id, {"phone": "+86 138 0000 0001"})
    b.collection("customers").update(rec.id, {"city": "杭州"})
    ca.sync()
    cb.sync()
    ca.sync()
    for store in (a, b):
        got = store.collection("customers")[rec.id]
        assert got["phone"] == "+86 138 0000 0001" and got["city"] == "杭州"


def test_lost_push_answer_is_retried_with_the_same_ids(store: Store, server: FakeServer) -> None:
    """The server applied the batch but the answer was lost: the retry is a duplicate."""
    lost = {"n": 0}

    def flaky(request: TransportRequest) -> TransportResponse:
        answer = server.handle(request)
        if request.path == "/v1/sync/push" and lost["n"] == 0:
            lost["n"] += 1
            raise NetworkError("connection reset after the server committed")
        return answer

    client = SyncClient(store, MockTransport(flaky), FAST)
    client.login("rep1", "fieldsync-demo")
    rec = store.collection("customers").insert({"name": "A", "status": "potential"})
    store.collection("customers").update(rec.id, {"tags": ["vip"]})
    report = client.sync()
    assert report.retries == 1 and report.duplicates == 1
    assert server.fields("customers", rec.id) == {
        "name": "A",
        "status": "potential",
        "tags": ["vip"],
        "owner_id": "u-rep1",
    }
    assert server.version == 1  # applied once


def test_offline_backs_off_then_reports_offline(store: Store, server: FakeServer) -> None:
    sleeps: list[float] = []
    transport = server.transport()
    client = SyncClient(store, transport, SyncConfig(sleep=sleeps.append, max_attempts=4))
    client.login("rep1", "fieldsync-demo")
    store.collection("customers").insert({"name": "A", "status": "potential"})
    transport.offline = True
    with pytest.raises(NetworkError):
        client.sync()
    assert len(sleeps) == 3 and all(0 <= s <= 30 for s in sleeps)
    status = store.status()
    assert not status.online and status.pending_total == 1
    assert status.last_error and "network_error" in status.last_error
    transport.offline = False
    client.sync()
    assert store.status().online and store.status().pending_total == 0
    assert store.status().last_error is None


def test_server_errors_are_retried_and_batches_shrink_on_413(
    store: Store, server: FakeServer
) -> None:
    seen: list[int] = []

    def limited(request: TransportRequest) -> TransportResponse:
        if request.path == "/v1/sync/push":
            n = len(request.body["mutations"])
            seen.append(n)
            if n > 2:
                return TransportResponse.of(
                    413, {"error": {"code": "batch_too_large", "message": "max 2", "details": {}}}
                )
        return server.handle(request)

    client = SyncClient(store, MockTransport(limited), SyncConfig(sleep=no_sleep, push_batch=8))
    client.login("rep1", "fieldsync-demo")
    for i in range(5):
        store.collection("customers").insert({"name": f"C{i}", "status": "potential"})
    server.fail_next = [503]
    report = client.sync()
    assert report.applied == 5 and report.retries >= 1
    # 8 -> 4 -> 2 after two 413s; the 503 repeats the same batch of 2; then 2 and 1
    assert seen == [5, 4, 2, 2, 2, 1]


def test_rejected_write_goes_to_dead_letters_others_continue(
    store: Store, server: FakeServer
) -> None:
    client = _client(store, server)
    customers = store.collection("customers")
    good = customers.insert({"name": "Good", "status": "potential"})
    bad = customers.insert({"name": "Bad", "status": "potential"})
    server.evict("customers", bad.id)  # the server will refuse writes to it
    after = customers.insert({"name": "After", "status": "potential"})
    report = client.sync()
    assert report.rejected == 1 and report.applied == 2
    assert server.fields("customers", good.id) and server.fields("customers", after.id)
    (dead,) = store.dead_letters()
    assert dead.record_id == bad.id and dead.code == "forbidden" and dead.fields["name"] == "Bad"
    assert customers.get(bad.id) is None
    assert store.status().dead_letters == 1
    store.discard_dead_letter(dead.id)
    assert store.dead_letters() == []


def test_dead_letter_fix_and_retry(store: Store, server: FakeServer) -> None:
    client = _client(store, server)
    rec = store.collection("customers").insert({"name": "A", "status": "potential"})
    client.sync()
    # the server's schema is stricter than the app's: it refuses this value
    strict = {"n": 0}

    def refusing(request: TransportRequest) -> TransportResponse:
        if request.path == "/v1/sync/push" and strict["n"] == 0:
            strict["n"] += 1
            m = request.body["mutations"][0]
            body = {
                "protocol": 1,
                "results": [
                    {
                        "mutation_id": m["id"],
                        "status": "rejected",
                        "error": {
                            "code": "validation_failed",
                            "message": "invalid",
                            "details": {
                                "fields": [{"field": "city", "code": "too_long", "message": "x"}]
                            },
                        },
                    }
                ],
                "server_hlc": "001700000000000:00000:server",
            }
            return TransportResponse.of(200, body)
        return server.handle(request)

    client.transport = MockTransport(refusing)
    store.collection("customers").update(rec.id, {"city": "Llanfairpwllgwyngyll"})
    client.sync()
    (dead,) = store.dead_letters()
    assert dead.error["details"]["fields"][0]["field"] == "city"
    assert store.collection("customers")[rec.id].get("city") is None  # falls back
    store.retry_dead_letter(dead.id, {"city": "Llanfair PG"})
    client.sync()
    assert store.dead_letters() == []
    assert (server.fields("customers", rec.id) or {}).get("city") == "Llanfair PG"


def test_expired_token_is_refreshed_and_the_pull_resumes(store: Store, server: FakeServer) -> None:
    for i in range(120):
        server.put("customers", f"c{i:03}", {"name": f"N{i}", "status": "potential"})
    client = _client(store, server, pull_limit=50)
    pulls: list[Any] = []
    original = server.handle

    def watch(request: TransportRequest) -> TransportResponse:
        if request.path == "/v1/sync/pull":
            pulls.append(request.body["checkpoint"])
            if len(pulls) == 2:
                server.expire_tokens()
        return original(request)

    client.transport = MockTransport(watch)
    report = client.sync()
    assert report.token_refreshes == 1 and report.pulled == 120
    assert pulls == [None, "v1:50", "v1:50", "v1:100"]  # the same page asked again
    assert store.collection("customers").count() == 120


def test_progress_events_count_up_to_the_total(store: Store, server: FakeServer) -> None:
    for i in range(130):
        server.put("customers", f"c{i:03}", {"name": f"N{i}", "status": "potential"})
    client = _client(store, server, pull_limit=50)
    progress: list[SyncProgress] = []
    store.subscribe(lambda e: progress.append(e) if isinstance(e, SyncProgress) else None)
    client.sync()
    assert [(p.done, p.total) for p in progress] == [(50, 130), (100, 130), (130, 130)]


def test_revoked_device_wipes_itself(
    make_store: MakeStore, server: FakeServer, tmp_path: Any
) -> None:
    store = make_store("rev.db")
    client = _client(store, server)
    store.collection("customers").insert({"name": "Secret", "status": "potential"})
    wiped: list[object] = []
    store.subscribe(lambda e: wiped.append(e) if isinstance(e, StoreWiped) else None)
    server.revoke(store.device_id, wipe=True)
    with pytest.raises(DeviceRevoked) as revoked:
        client.sync()
    assert revoked.value.wiped and store.closed
    assert wiped == [StoreWiped("revoked")]
    assert not any(p.name.startswith("rev.db") for p in tmp_path.iterdir())
    with pytest.raises(StoreClosed):
        store.collection("customers").count()
    fresh = Store.open(tmp_path / "rev.db", "new passphrase", schema=CRM_SCHEMA, kdf=FAST_KDF)
    assert fresh.collection("customers").count() == 0 and fresh.device_id != store.device_id
    fresh.close()


def test_revoked_device_without_wipe_stops_syncing_and_keeps_its_work(
    make_store: MakeStore, server: FakeServer, tmp_path: Any
) -> None:
    store = make_store("keep.db")
    client = _client(store, server)
    customers = store.collection("customers")
    synced = customers.insert({"name": "Synced", "status": "potential"})
    client.sync()
    unsent = customers.insert({"name": "Not yet sent", "status": "potential"})
    server.revoke(store.device_id)  # no wipe asked
    with pytest.raises(DeviceRevoked) as revoked:
        client.sync()
    assert not revoked.value.wiped and not store.closed
    assert store.status().revoked and not client.logged_in
    # every unsent write stays readable and exportable
    assert customers[unsent.id]["name"] == "Not yet sent" and customers[synced.id]
    assert store.unsent_work().pending_writes == 1
    exported = store.export_unsent(tmp_path / "unsent.zip")
    with zipfile.ZipFile(exported) as archive:
        document = json.loads(archive.read("unsent.json"))
    assert [w["fields"]["name"] for w in document["pending_writes"]] == ["Not yet sent"]
    # syncing stays stopped (no request leaves) until a sign-in succeeds
    before = server.requests
    with pytest.raises(DeviceRevoked):
        client.sync()
    assert server.requests == before
    del server.revoked[store.device_id]  # an administrator lets the device back in
    client.login("rep1", "fieldsync-demo")
    assert not store.status().revoked
    client.sync()
    assert server.fields("customers", unsent.id) == {
        "name": "Not yet sent",
        "status": "potential",
        "owner_id": "u-rep1",
    }


def test_evicted_record_disappears_and_pending_edits_become_dead_letters(
    store: Store, server: FakeServer
) -> None:
    client = _client(store, server)
    customers = store.collection("customers")
    keep = customers.insert({"name": "Keep", "status": "potential"})
    gone = customers.insert({"name": "Gone", "status": "potential"})
    client.sync()
    server.evict("customers", gone.id)
    client.pull()
    assert customers.get(gone.id) is None and customers.get(keep.id) is not None
    customers.update(keep.id, {"city": "A"})
    other = customers.insert({"name": "Other", "status": "potential"})
    client.sync()
    # an eviction arriving while an edit waits: the edit is kept as a dead letter
    customers.update(other.id, {"city": "B"})
    server.evict("customers", other.id)
    client.pull()
    assert customers.get(other.id) is None
    assert [d.record_id for d in store.dead_letters()] == [other.id]
    assert store.dead_letters()[0].error["details"]["evicted"] is True


def test_resync_required_repulls_and_keeps_pending_writes(store: Store, server: FakeServer) -> None:
    client = _client(store, server)
    customers = store.collection("customers")
    a = customers.insert({"name": "A", "status": "potential"})
    b = customers.insert({"name": "B", "status": "potential"})
    client.sync()
    del server.rows[("customers", b.id)]  # purged on the server, tombstone gone
    server.require_resync()
    customers.update(a.id, {"city": "Pending"})
    report = client.pull()
    assert report.resynced
    assert customers.get(b.id) is None  # not re-delivered: dropped
    assert customers[a.id]["city"] == "Pending" and store.status().pending_total == 1
    client.sync()
    assert (server.fields("customers", a.id) or {}).get("city") == "Pending"


def test_clock_skew_warning_is_surfaced(store: Store, server: FakeServer) -> None:
    def warn(request: TransportRequest) -> TransportResponse:
        answer = server.handle(request)
        if request.path == "/v1/sync/push":
            body = json.loads(answer.content)
            body["warnings"] = [
                {"code": "clock_skew", "message": "device clock is 900 s ahead", "details": {}}
            ]
            return TransportResponse.of(200, body)
        return answer

    client = SyncClient(store, MockTransport(warn), FAST)
    client.login("rep1", "fieldsync-demo")
    store.collection("customers").insert({"name": "A", "status": "potential"})
    report = client.sync()
    assert store.status().clock_warning == "device clock is 900 s ahead"
    assert report.warnings == ["device clock is 900 s ahead"]


def test_server_hlc_is_merged_and_persisted(
    make_store: MakeStore, server: FakeServer, tmp_path: Any
) -> None:
    store = make_store("h.db")
    client = _client(store, server)
    ahead = f"{(10**14):015d}:00007:server"
    server.hlc.receive(ahead)
    client.pull()
    assert store._core.hlc.last.wall_ms >= 10**14
    store.close()
    again = Store.open(tmp_path / "h.db", "correct horse battery staple", schema=CRM_SCHEMA)
    assert again._core.hlc.now().wall_ms >= 10**14
    again.close()


def test_manual_conflict_resolved_on_one_device_reaches_the_other(
    make_store: MakeStore, server: FakeServer
) -> None:
    a, b = make_store("a.db"), make_store("b.db")
    ca, cb = _client(a, server), _client(b, server)
    k = a.collection("contracts").insert(
        {"customer_id": "c1", "number": "HT-1", "status": "draft", "amount": 100}
    )
    ca.sync()
    cb.sync()
    a.collection("contracts").update(k.id, {"amount": 120})
    b.collection("contracts").update(k.id, {"amount": 150})
    ca.sync()
    assert cb.sync().conflicts == 1
    ca.sync()
    (ca_conflict,) = a.conflicts()
    assert (ca_conflict.base, ca_conflict.remote, ca_conflict.local) == (100, 120, 150)
    a.resolve_conflict(ca_conflict.id, "value", 135)
    assert a.conflicts() == [] and a.collection("contracts")[k.id]["amount"] == 135
    ca.sync()
    cb.sync()
    assert b.conflicts() == [] and b.collection("contracts")[k.id]["amount"] == 135
    assert server.rows[("_conflicts", ca_conflict.id)].record.fields["status"] == "resolved"


def test_background_sync_runs_on_trigger(store: Store, server: FakeServer) -> None:
    client = _client(store, server)
    runner = BackgroundSync(client, interval_s=3600)
    runner.start()
    try:
        rec = store.collection("customers").insert({"name": "A", "status": "potential"})
        for _ in range(200):
            runner.trigger()
            if server.fields("customers", rec.id):
                break
            import time

            time.sleep(0.01)
        assert server.fields("customers", rec.id)
    finally:
        runner.stop()
    assert not runner.running


def test_another_user_logging_in_drops_the_previous_users_data(
    store: Store, server: FakeServer
) -> None:
    server.users["rep2"] = "other-password"
    client = _client(store, server)
    store.collection("customers").insert({"name": "Rep1's customer", "status": "potential"})
    client.sync()
    store.collection("customers").insert({"name": "Rep1's unsynced", "status": "potential"})
    with pytest.raises(WouldLoseWork) as refused:
        client.login("rep2", "other-password")  # rep1's unsent write would be dropped
    assert refused.value.work.pending_writes == 1
    assert client.user is not None and client.user.username == "rep1"  # still rep1
    assert store.collection("customers").count() == 2
    first_device = store.device_id
    user = client.login("rep2", "other-password", force=True)
    # the device id is rep1's (the server binds it to its first user): rep2 gets a new one
    assert store.device_id != first_device
    assert user.username == "rep2" and client.user == user
    assert store.collection("customers").count() == 0 and store.status().pending_total == 0
    client.sync()
    assert store.collection("customers").count() == 1  # what rep2 may see (all, here)


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_http_transport_wraps_an_in_process_fastapi_app(tmp_path: Any, store: Store) -> None:
    from fastapi.testclient import TestClient

    from server.app import create_app
    from server.settings import Settings
    from tests.support.server_proc import TEST_SECRET, migrate, seed_demo

    db_url = f"sqlite:///{tmp_path / 'inproc.db'}"
    migrate(db_url)
    seed_demo(db_url, customers=5)
    app = create_app(Settings(env="test", database_url=db_url, secret_key=TEST_SECRET))
    with TestClient(app) as http:
        client = SyncClient(store, HttpTransport(client=http), FAST)
        client.login("rep1", "fieldsync-demo")
        rec = store.collection("customers").insert({"name": "进程内", "status": "potential"})
        report = client.sync()
        assert report.applied == 1 and report.pulled > 1
        assert store.collection("customers")[rec.id]["owner_id"] == "u-rep1"
