"""Two server instances on one PostgreSQL behind a real nginx, configured from
``deploy/nginx/fieldsync.conf``: event streams pass through unbuffered and outlive the
proxy's read timeout (heartbeats), a write through the balancer — landing on either
instance — pokes a stream held through it, sync works, revocation closes the stream,
and an instance going down does not stop the service."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import IN_CI
from tests.support.balancer import Balancer, nginx_binary
from tests.support.live import Device
from tests.support.server_proc import ServerProcess

from .conftest import PASSWORD

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, pair: tuple[ServerProcess, ServerProcess]
) -> Iterator[tuple[Balancer, ServerProcess, ServerProcess]]:
    """nginx from deploy/nginx/fieldsync.conf in front of the package's two instances."""
    if nginx_binary() is None:
        message = "nginx is not installed (make deb-deps installs it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    a, b = pair
    directory: Path = tmp_path_factory.mktemp("nginx")
    with Balancer([a.port, b.port], directory, events_read_timeout_s=3) as lb:
        yield lb, a, b


@pytest.fixture
def running(
    stack: tuple[Balancer, ServerProcess, ServerProcess],
) -> tuple[Balancer, ServerProcess, ServerProcess]:
    for proc in stack[1:]:
        if not proc.running:
            proc.start()
    return stack


def test_streams_pass_through_unbuffered_and_outlive_the_read_timeout(
    running: tuple[Balancer, ServerProcess, ServerProcess],
) -> None:
    lb, _a, _b = running
    stream = Device(lb.url, "mgr_a", PASSWORD).stream()
    try:
        stream.wait_for(lambda e: e.name == "ready")
        time.sleep(5)  # longer than the proxy's 3 s read timeout
        assert not stream.ended.is_set()
        beats = [e.at for e in stream.named("heartbeat")]
        assert len(beats) >= 3
        # One at a time as they are sent, not in a buffered lump.
        assert all(later - earlier > 0.5 for earlier, later in itertools.pairwise(beats))
    finally:
        stream.close()


def test_writes_through_the_balancer_poke_and_sync(
    running: tuple[Balancer, ServerProcess, ServerProcess],
) -> None:
    lb, _a, _b = running
    writer = Device(lb.url, "rep_a1", PASSWORD)
    reader = Device(lb.url, "mgr_a", PASSWORD)
    stream = reader.stream()
    try:
        reader.checkpoint = stream.wait_for(lambda e: e.name == "ready").data["checkpoint"]
        reader.pull()
        versions = []
        for n in range(4):  # round robin: the writes land on both instances
            version = writer.push_customer(f"c-lb-{n}", f"负载均衡 {n}")
            versions.append(version)
            stream.wait_for(
                lambda e, v=version: (
                    e.name == "changes" and int(e.data["checkpoint"].rsplit(":", 1)[-1]) >= v
                ),
                5,
            )
        assert sorted(c["version"] for c in reader.pull()) == versions
        assert {("customers", f"c-lb-{n}") for n in range(4)} <= set(reader.records)
    finally:
        stream.close()


def test_revocation_closes_the_stream_through_the_balancer(
    running: tuple[Balancer, ServerProcess, ServerProcess],
) -> None:
    lb, _a, _b = running
    phone = Device(lb.url, "rep_a1", PASSWORD)
    manager = Device(lb.url, "mgr_a", PASSWORD)
    stream = phone.stream()
    try:
        stream.wait_for(lambda e: e.name == "ready")
        response = httpx.post(
            f"{lb.url}/v1/manager/devices/{phone.device_id}/revoke",
            headers=manager.headers,
            timeout=30,
        )
        assert response.status_code == 200, response.text
        error = stream.wait_for(lambda e: e.name == "error", 5)
        assert error.data["error"]["code"] == "device_revoked"
        assert stream.ended.wait(5)
    finally:
        stream.close()


def test_one_instance_down_the_service_goes_on(
    running: tuple[Balancer, ServerProcess, ServerProcess],
) -> None:
    lb, a, _b = running
    writer = Device(lb.url, "rep_a1", PASSWORD)
    reader = Device(lb.url, "mgr_a", PASSWORD)
    a.kill()
    try:
        stream = reader.stream()  # whichever instance nginx tries first, B answers
        reader.checkpoint = stream.wait_for(lambda e: e.name == "ready").data["checkpoint"]
        for n in range(2):
            version = writer.push_customer(f"c-down-{n}", "一台宕机")
            stream.wait_for(
                lambda e, v=version: (
                    e.name == "changes" and int(e.data["checkpoint"].rsplit(":", 1)[-1]) >= v
                ),
                5,
            )
        assert len(reader.pull()) == 2
        stream.close()
    finally:
        a.start()
