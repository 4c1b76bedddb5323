"""Fixtures of the attachment tests: one real server process per module (SQLite, demo
data, attachments under a temporary directory) and signed-in devices."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from client_sdk import FAST_KDF, HttpTransport, Store, SyncClient, SyncConfig
from sync_protocol import CRM_SCHEMA
from tests.support.server_proc import ServerProcess

SERVER_MAX_BYTES = 32 * 1024 * 1024
REP1_CUSTOMER = "demo-cust-0000"  # owned by rep1 in the demo data
REP2_CUSTOMER = "demo-cust-0001"  # owned by rep2


@pytest.fixture(scope="module")
def blob_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("server-attachments")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, blob_dir: Path) -> Iterator[ServerProcess]:
    db = tmp_path_factory.mktemp("server-db") / "fieldsync.db"
    env = {
        "FIELDSYNC_ATTACHMENTS_DIR": str(blob_dir),
        "FIELDSYNC_ATTACHMENTS_MAX_BYTES": str(SERVER_MAX_BYTES),
        "FIELDSYNC_ATTACHMENTS_FSYNC": "false",
    }
    with ServerProcess(f"sqlite:///{db}", env=env, seed_demo=True, demo_customers=10) as proc:
        yield proc


def blob_files(blob_dir: Path) -> list[Path]:
    return sorted(p for p in (blob_dir / "blobs").glob("??/*") if p.is_file())


class Device:
    """One phone: an encrypted store, a signed-in sync client."""

    def __init__(self, tmp_path: Path, name: str, server: ServerProcess, user: str) -> None:
        self.path = tmp_path / f"{name}.db"
        self.store = Store.open(self.path, f"{name}-pass", schema=CRM_SCHEMA, kdf=FAST_KDF)
        self.client = SyncClient(
            self.store, HttpTransport(server.url), SyncConfig(sleep=lambda _s: None)
        )
        self.client.login(user, "fieldsync-demo", device_name=name)

    def close(self) -> None:
        self.client.close()
        if not self.store.closed:
            self.store.close()


@pytest.fixture
def devices(tmp_path: Path, server: ServerProcess) -> Iterator[Any]:
    made: list[Device] = []

    def make(name: str, user: str = "rep1") -> Device:
        device = Device(tmp_path, name, server, user)
        made.append(device)
        return device

    yield make
    for device in made:
        device.close()


def api(server: ServerProcess, user: str, device_id: str | None = None) -> httpx.Client:
    """A raw HTTP client signed in as ``user`` (the manager's console, or an attacker)."""
    token = server.login(user, device_id=device_id or f"raw-{user}")["access_token"]
    return httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
