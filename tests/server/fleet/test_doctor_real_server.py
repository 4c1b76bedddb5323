"""Issue 18, done-when 1: a device with a skewed clock, one stuck on a poison write, a
revoked one and one that never synced each get the right ``doctor`` diagnosis — from a
real server process (uvicorn on an SQLite file) that real SDK stores synced with, asked
through the manager API and through ``fieldsync doctor``.

The poison write is a record the server fails on at every push (the server process is
``tests/support/poison_server.py``: the unchanged server plus that one fault).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from client_sdk import (
    FAST_KDF,
    DeviceRevoked,
    HttpTransport,
    NetworkError,
    ServerError,
    Store,
    SyncClient,
    SyncConfig,
)
from sync_protocol import CRM_SCHEMA
from tests.support.server_proc import REPO_ROOT, ServerProcess

DAY_S = 86_400


class AheadClock:
    """A phone whose clock is set three days ahead."""

    def time(self) -> float:
        return time.time() + 3 * DAY_S


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    path = tmp_path_factory.mktemp("doctor-e2e") / "fieldsync.db"
    env = {"FIELDSYNC_HEALTH_FLUSH_INTERVAL_S": "0.2"}
    with ServerProcess(
        f"sqlite:///{path}",
        env=env,
        seed_demo=True,
        demo_customers=5,
        module="tests.support.poison_server",
    ) as proc:
        yield proc


def phone(
    tmp_path: Path, name: str, server: ServerProcess, username: str = "rep1", **kw: Any
) -> tuple[Store, SyncClient]:
    store = Store.open(
        tmp_path / f"{name}.db", f"{name}-pass", schema=CRM_SCHEMA, kdf=FAST_KDF, **kw
    )
    config = SyncConfig(max_attempts=3, sleep=lambda _s: None)
    client = SyncClient(store, HttpTransport(server.url), config)
    client.login(username, "fieldsync-demo", device_name=name)
    return store, client


def ask(server: ServerProcess, device_id: str) -> dict[str, Any]:
    token = server.login("admin", device_id="doctor-admin")["access_token"]
    response = httpx.get(
        f"{server.url}/v1/manager/devices/{device_id}/diagnosis",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def cli(server: ServerProcess, target: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server", "doctor", target, "--database-url", server.db_url],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def codes(found: dict[str, Any]) -> list[str]:
    return [f["code"] for f in found["findings"]]


def test_never_synced(server: ServerProcess, tmp_path: Path) -> None:
    store, _client = phone(tmp_path, "never", server)
    found = ask(server, store.device_id)
    assert (found["verdict"], codes(found)) == ("broken", ["never_synced"])
    done = cli(server, store.device_id)
    assert done.returncode == 3, done.stderr
    assert "verdict: BROKEN — Signed in" in done.stdout and "never synced" in done.stdout
    assert "what to do: Have the rep open the app while online" in done.stdout


def test_skewed_clock(server: ServerProcess, tmp_path: Path) -> None:
    store, client = phone(tmp_path, "skewed", server, clock=AheadClock())
    store.collection("customers").insert({"name": "Skew Ltd", "status": "potential"})
    report = client.sync()
    assert report.applied == 1 and any("ahead" in w for w in report.warnings)
    found = ask(server, store.device_id)
    assert (found["verdict"], codes(found)) == ("attention", ["clock_skewed"])
    assert "3 days ahead of the server" in found["headline"]
    assert "automatic date and time" in found["findings"][0]["action"]
    # The SDK's own status report arrived with the sync: its outbox drained to 0, and the
    # clock it reported is the skewed one.
    health = found["health"]
    assert health["pending_writes"] == 0 and health["reported_at"] is not None
    assert abs(health["clock_offset_ms"] - 3 * DAY_S * 1000) < 600_000


def test_poison_write(server: ServerProcess, tmp_path: Path) -> None:
    store, client = phone(tmp_path, "poisoned", server, username="rep2")
    customers = store.collection("customers")
    customers.insert({"name": "Fine Ltd", "status": "potential"})
    customers.insert({"name": "Poison Ltd", "status": "potential"}, id="poison-1")
    for _ in range(3):  # three syncs, every push refused (the app retries each)
        # After a 500, uvicorn closes the connection: a retry may meet a closed socket.
        with pytest.raises((ServerError, NetworkError)):
            client.sync()
    assert store.status().pending_total == 2
    found = ask(server, store.device_id)
    assert (found["verdict"], codes(found)[0]) == ("broken", "poison_write")
    assert re.search(r"last \d+ pushes failed with `internal_error`", found["headline"])
    assert "2 writes are queued" in found["headline"]
    done = cli(server, "rep2")  # by username: every device of rep2
    assert done.returncode == 3
    assert "Stuck on a write the server cannot take" in done.stdout
    as_json = json.loads(cli_json(server, store.device_id))
    assert as_json[0]["findings"][0]["code"] == "poison_write"


def cli_json(server: ServerProcess, target: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "server", "doctor", target, "--json"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**server.environment()},
    )
    return done.stdout


def test_revoked(server: ServerProcess, tmp_path: Path) -> None:
    store, client = phone(tmp_path, "revoked", server)
    client.sync()
    device_id = store.device_id
    token = server.login("admin", device_id="doctor-admin")["access_token"]
    revoked = httpx.post(
        f"{server.url}/v1/manager/devices/{device_id}/revoke",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert revoked.status_code == 200
    with pytest.raises(DeviceRevoked):
        client.sync()
    found = ask(server, device_id)
    assert (found["verdict"], codes(found)) == ("broken", ["revoked"])
    assert "revoked" in found["headline"] and "was told to stop" in found["headline"]
