"""Issue 2's end-to-end round trip, through all four layers and a real server process.

Device A of ``rep1`` creates a customer while the server is down; the server starts; A
syncs; device B of ``rep1`` syncs and reads the customer. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from client_sdk import FAST_KDF, HttpTransport, NetworkError, Store, SyncClient, SyncConfig
from sync_protocol import CRM_SCHEMA
from tests.support.server_proc import ServerProcess

pytestmark = pytest.mark.e2e

NAME = "张三 Zhang San"
PHONE = "+86 138 0013 8000"


def _client(store: Store, url: str) -> SyncClient:
    # Few retries: the offline attempt should fail fast, not back off for a minute.
    config = SyncConfig(max_attempts=1, backoff_initial_s=0.01, sleep=lambda _s: None)
    return SyncClient(store, HttpTransport(url, timeout_s=10.0), config)


def test_offline_create_then_sync_reaches_second_device(db_url: str, tmp_path: Path) -> None:
    server = ServerProcess(db_url, seed_demo=True, demo_customers=20)
    server.prepare()  # database migrated and seeded, but no server process yet

    device_a = Store.open(tmp_path / "a.db", "passphrase A", schema=CRM_SCHEMA, kdf=FAST_KDF)
    created = device_a.collection("customers").insert(
        {"name": NAME, "phone": PHONE, "status": "potential", "tier": "high"}
    )
    assert device_a.collection("customers").get(created.id) is not None
    assert device_a.status().pending_total == 1

    client_a = _client(device_a, server.url)
    with pytest.raises(NetworkError):
        client_a.login("rep1", "fieldsync-demo", device_name="phone A")
    assert device_a.status().pending_total == 1, "an offline failure must keep the write"

    try:
        server.start()
        client_a.login("rep1", "fieldsync-demo", device_name="phone A")
        report = client_a.sync()
        assert report.pushed >= 1
        assert device_a.status().pending_total == 0
        synced = device_a.collection("customers").get(created.id)
        assert synced is not None and synced.version is not None and not synced.pending

        device_b = Store.open(tmp_path / "b.db", "passphrase B", schema=CRM_SCHEMA, kdf=FAST_KDF)
        client_b = _client(device_b, server.url)
        client_b.login("rep1", "fieldsync-demo", device_name="phone B")
        client_b.sync()
        seen = device_b.collection("customers").get(created.id)
        assert seen is not None, "device B did not receive device A's offline customer"
        assert seen["name"] == NAME and seen["phone"] == PHONE
        assert seen.version == synced.version

        # rep2 may not see rep1's customer: the pull is scoped.
        device_c = Store.open(tmp_path / "c.db", "passphrase C", schema=CRM_SCHEMA, kdf=FAST_KDF)
        client_c = _client(device_c, server.url)
        client_c.login("rep2", "fieldsync-demo", device_name="phone C")
        client_c.sync()
        assert device_c.collection("customers").get(created.id) is None

        for store in (device_a, device_b, device_c):
            store.close()
    finally:
        server.stop()


def test_docs_and_openapi_answer_on_a_real_server(sqlite_url: str) -> None:
    with ServerProcess(sqlite_url, seed_demo=True, demo_customers=5) as server:
        assert httpx.get(f"{server.url}/docs").status_code == 200
        spec = httpx.get(f"{server.url}/openapi.json").json()
        assert "/v1/sync/push" in spec["paths"] and "/v1/sync/pull" in spec["paths"]
        login = httpx.post(
            f"{server.url}/v1/auth/login",
            json={"username": "rep1", "password": "fieldsync-demo", "device_id": "curl-1"},
        )
        assert login.status_code == 200, login.text
        assert login.json()["user"]["role"] == "rep"
