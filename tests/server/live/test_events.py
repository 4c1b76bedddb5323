"""``GET /v1/sync/events`` on one real server process (SQLite, in-process fan-out):
pokes follow scope, carry a checkpoint a pull reaches, heartbeats keep an idle stream
alive, and the stream closes with the request's error when the device is revoked."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.live import Device
from tests.support.server_proc import ServerProcess, create_team_direct, create_user_direct

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    url = f"sqlite:///{tmp_path_factory.mktemp('live') / 'live.db'}"
    proc = ServerProcess(
        url,
        env={
            "FIELDSYNC_LIVE_HEARTBEAT_S": "0.5",
            "FIELDSYNC_LIVE_AUTH_CHECK_S": "60",  # revocation must arrive by the commit hook
            "FIELDSYNC_LIVE_POLL_S": "60",  # and changes by it too
        },
    )
    proc.prepare()
    team_a = create_team_direct(url, "A", team_id="team-a")
    team_b = create_team_direct(url, "B", team_id="team-b")
    create_user_direct(url, "mgr_a", PASSWORD, role="manager", team_id=team_a)
    create_user_direct(url, "rep_a1", PASSWORD, team_id=team_a)
    create_user_direct(url, "rep_b1", PASSWORD, team_id=team_b)
    with proc:
        yield proc


def test_a_write_pokes_the_streams_whose_scope_it_touches(server: ServerProcess) -> None:
    writer = Device(server.url, "rep_a1", PASSWORD)
    own_other = Device(server.url, "rep_a1", PASSWORD)
    manager = Device(server.url, "mgr_a", PASSWORD)
    outsider = Device(server.url, "rep_b1", PASSWORD)
    streams = {d: d.stream() for d in (own_other, manager, outsider)}
    try:
        for device, stream in streams.items():
            ready = stream.wait_for(lambda e: e.name == "ready")
            device.checkpoint = ready.data["checkpoint"]
            assert device.pull() == []
        version = writer.push_customer("c-live-1", "新客户")
        for device in (own_other, manager):
            poke = streams[device].wait_for(lambda e: e.name == "changes", 5)
            changes = device.pull()
            assert [c["record_id"] for c in changes] == ["c-live-1"]
            assert changes[0]["version"] == version
            assert device.checkpoint == poke.data["checkpoint"]
        time.sleep(0.3)
        assert streams[outsider].named("changes") == []  # not in rep_b1's scope
        # rep_b1's own write pokes rep_b1's stream only.
        Device(server.url, "rep_b1", PASSWORD).push_customer("c-live-2", "Other team")
        streams[outsider].wait_for(lambda e: e.name == "changes", 5)
        time.sleep(0.3)
        assert len(streams[manager].named("changes")) == 1
    finally:
        for stream in streams.values():
            stream.close()


def test_idle_stream_gets_heartbeats(server: ServerProcess) -> None:
    stream = Device(server.url, "rep_a1", PASSWORD).stream()
    try:
        stream.wait_for(lambda e: e.name == "ready")
        first = stream.wait_for(lambda e: e.name == "heartbeat", 3)
        stream.wait_for(lambda e: e.name == "heartbeat" and e.at > first.at, 3)
    finally:
        stream.close()


def test_revoking_the_device_closes_its_stream(server: ServerProcess) -> None:
    phone = Device(server.url, "rep_a1", PASSWORD)
    manager = Device(server.url, "mgr_a", PASSWORD)
    stream = phone.stream()
    other = Device(server.url, "rep_a1", PASSWORD).stream()
    try:
        stream.wait_for(lambda e: e.name == "ready")
        other.wait_for(lambda e: e.name == "ready")
        response = httpx.post(
            f"{server.url}/v1/manager/devices/{phone.device_id}/revoke",
            headers=manager.headers,
            timeout=30,
        )
        assert response.status_code == 200, response.text
        error = stream.wait_for(lambda e: e.name == "error", 5)
        assert error.data["error"]["code"] == "device_revoked"
        assert error.data["error"]["details"] == {"wipe": False}
        assert stream.ended.wait(5)
        # The user's other device keeps streaming.
        time.sleep(0.3)
        assert not other.ended.is_set()
        # A revoked device cannot open a new stream either.
        again = phone.stream()
        assert again.ended.wait(5)
        assert again.status == 403
        assert again.error_body["error"]["code"] == "device_revoked"
    finally:
        stream.close()
        other.close()


def test_no_stream_without_a_valid_token(server: ServerProcess) -> None:
    response = httpx.get(f"{server.url}/v1/sync/events", timeout=10)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    response = httpx.get(
        f"{server.url}/v1/sync/events", headers={"Authorization": "Bearer fs1.x.y"}, timeout=10
    )
    assert response.status_code == 401


def test_signing_out_closes_that_devices_stream_only(server: ServerProcess) -> None:
    leaving = Device(server.url, "mgr_a", PASSWORD)
    staying = Device(server.url, "mgr_a", PASSWORD)
    gone, kept = leaving.stream(), staying.stream()
    try:
        gone.wait_for(lambda e: e.name == "ready")
        kept.wait_for(lambda e: e.name == "ready")
        response = httpx.post(f"{server.url}/v1/auth/logout", headers=leaving.headers, timeout=30)
        assert response.status_code == 204
        error = gone.wait_for(lambda e: e.name == "error", 5)
        assert error.data["error"]["code"] == "unauthorized"
        assert gone.ended.wait(5)
        time.sleep(0.3)
        assert not kept.ended.is_set()
    finally:
        gone.close()
        kept.close()
