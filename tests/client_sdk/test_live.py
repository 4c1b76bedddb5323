"""The SDK's live subscription against a real server process: a manager's store hears
of a rep's edit through ``GET /v1/sync/events`` and syncs at once (its polling interval
is an hour); the subscription falls back to polling when the stream is down and comes
back with the server; a revoked device's subscription stops."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from client_sdk import BackgroundSync, DeviceRevoked, LiveSubscription, subscribe
from tests.support.server_proc import ServerProcess

from .e2e_helpers import device, revoke

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    db = tmp_path_factory.mktemp("live-sdk") / "server.db"
    env = {"FIELDSYNC_LIVE_HEARTBEAT_S": "1"}
    with ServerProcess(f"sqlite:///{db}", env=env, seed_demo=True, demo_customers=3) as proc:
        yield proc


def _until(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def test_an_edit_reaches_a_subscribed_store_by_a_poke(
    server: ServerProcess, tmp_path: Path
) -> None:
    rep, rep_client = device(tmp_path, "rep-phone", server, "rep1")
    boss, boss_client = device(tmp_path, "manager-phone", server, "manager")
    boss_client.sync()
    background = BackgroundSync(boss_client, interval_s=3600)
    background.start()
    live = subscribe(background, base_url=server.url, stale_after_s=5)
    try:
        _until(lambda: live.connected)
        _until(lambda: background.runs >= 1)
        runs = background.runs
        record = rep.collection("customers").insert({"name": "实时客户", "status": "potential"})
        rep_client.sync()
        _until(lambda: boss.collection("customers").get(record.id) is not None, 5)
        # the record shows once its page is applied; the run counts when the sync ends
        _until(lambda: background.runs > runs, 5)
        assert background.runs == runs + 1  # one poke, one sync: no polling happened
        assert live.pokes >= 1
    finally:
        live.stop()
        background.stop()
        rep.close()
        boss.close()


def test_falls_back_to_polling_while_the_stream_is_down(
    server: ServerProcess, tmp_path: Path
) -> None:
    store, client = device(tmp_path, "fallback-phone", server, "manager")
    background = BackgroundSync(client, interval_s=0.5)
    background.start()
    live = subscribe(
        background, base_url=server.url, live_interval_s=3600, stale_after_s=3,
        reconnect_min_s=0.2, reconnect_max_s=0.5,
    )  # fmt: skip
    try:
        _until(lambda: live.connected)
        assert background.interval_s == 3600  # a safety-net poll only
        server.stop()
        _until(lambda: not live.connected)
        assert background.interval_s == 0.5  # polling again
        server.start()
        _until(lambda: live.connected and live.connections >= 2, 20)
        assert background.interval_s == 3600
    finally:
        live.stop()
        background.stop()
        store.close()
        if not server.running:
            server.start()


def test_a_revoked_device_stops_subscribing(server: ServerProcess, tmp_path: Path) -> None:
    store, client = device(tmp_path, "revoked-phone", server, "rep2")
    client.sync()
    background = BackgroundSync(client, interval_s=3600)
    background.start()
    live = LiveSubscription(client, background.trigger, base_url=server.url)
    live.start()
    try:
        _until(lambda: live.connected)
        revoke(server, store.device_id, wipe=False)
        _until(lambda: not live.running, 10)
        assert live.last_error == "device_revoked"
        _until(lambda: isinstance(background.last_exception, DeviceRevoked), 10)
    finally:
        live.stop()
        background.stop()
        store.close()
