"""Two real server processes on one PostgreSQL database: a write on instance A reaches a
device streaming from instance B (LISTEN/NOTIFY, in-memory fan-out), and neither a
killed listener connection nor a killed instance loses a change.

Both instances run with the periodic re-read off (``FIELDSYNC_LIVE_POLL_S=3600``) so
only the LISTEN/NOTIFY path and its reconnect recovery can deliver a poke in time.
"""

from __future__ import annotations

import time

import psycopg
import pytest

from tests.conftest import _libpq_url
from tests.support.live import Device
from tests.support.server_proc import ServerProcess

from .conftest import PASSWORD

pytestmark = pytest.mark.postgres


def _listeners(db_url: str, pid: int | None) -> list[int]:
    with psycopg.connect(_libpq_url(db_url), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s",
            (f"fieldsync-live/{pid}",),
        ).fetchall()
    return [int(r[0]) for r in rows]


def _wait_listening(db_url: str, pid: int | None, timeout_s: float = 10) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = _listeners(db_url, pid)
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"no listener connection of process {pid}")


def test_a_write_on_a_reaches_a_device_streaming_from_b(
    running_pair: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = running_pair
    writer = Device(a.url, "rep_a1", PASSWORD)
    reader = Device(b.url, "mgr_a", PASSWORD)
    stream = reader.stream()
    try:
        reader.checkpoint = stream.wait_for(lambda e: e.name == "ready").data["checkpoint"]
        _wait_listening(b.db_url, b.pid)
        for n in range(3):
            version = writer.push_customer(f"c-{n}", f"客户 {n}")
            stream.wait_for(lambda e, v=version: _reaches(e, v), 5)
            assert [c["version"] for c in reader.pull()] == [version]
    finally:
        stream.close()


def _reaches(event: object, version: int) -> bool:
    name = getattr(event, "name", "")
    data = getattr(event, "data", {})
    return name == "changes" and int(str(data["checkpoint"]).rsplit(":", 1)[-1]) >= version


def test_a_killed_listener_connection_loses_no_change(
    running_pair: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = running_pair
    writer = Device(a.url, "rep_a1", PASSWORD)
    reader = Device(b.url, "mgr_a", PASSWORD)
    stream = reader.stream()
    try:
        reader.checkpoint = stream.wait_for(lambda e: e.name == "ready").data["checkpoint"]
        [listener] = _wait_listening(b.db_url, b.pid)
        with psycopg.connect(_libpq_url(b.db_url), autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(%s)", (listener,))
        assert _listeners(b.db_url, b.pid) == []
        # B reconnects only after 2 s: these commits happen while nobody on B listens.
        versions = [writer.push_customer(f"c-gap-{n}", "在断线期间") for n in range(3)]
        time.sleep(0.5)
        assert stream.named("changes") == [], "B was not listening: nothing should arrive yet"
        stream.wait_for(lambda e: _reaches(e, versions[-1]), 10)
        assert _listeners(b.db_url, b.pid) != []
        assert sorted(c["version"] for c in reader.pull()) == versions
        # And live again afterwards.
        version = writer.push_customer("c-after", "之后")
        stream.wait_for(lambda e: _reaches(e, version), 5)
    finally:
        stream.close()


def test_a_killed_instance_loses_no_change(
    running_pair: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = running_pair
    writer = Device(a.url, "rep_a1", PASSWORD)
    reader = Device(b.url, "mgr_a", PASSWORD)
    stream = reader.stream()
    reader.checkpoint = stream.wait_for(lambda e: e.name == "ready").data["checkpoint"]
    b.kill()
    assert stream.ended.wait(5)
    stream.close()
    versions = [writer.push_customer(f"c-down-{n}", "B 宕机时") for n in range(3)]
    b.start()
    again = reader.stream()
    try:
        ready = again.wait_for(lambda e: e.name == "ready")
        assert ready.data["checkpoint"] != reader.checkpoint  # the device knows to pull
        assert sorted(c["version"] for c in reader.pull()) == versions
        _wait_listening(b.db_url, b.pid)
        version = writer.push_customer("c-back", "恢复后")
        again.wait_for(lambda e: _reaches(e, version), 5)
    finally:
        again.close()
