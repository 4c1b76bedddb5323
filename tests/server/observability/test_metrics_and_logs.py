"""Issue 18, done-when 2: ``/metrics`` moves with a sync, and the server's logs of a full
sync hold no password, no token and no customer data — a real server process (uvicorn,
SQLite) logging JSON lines to a file, and a real SDK store syncing with it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from client_sdk import FAST_KDF, HttpTransport, Store, SyncClient, SyncConfig
from sync_protocol import CRM_SCHEMA
from tests.support.server_proc import ServerProcess, create_user_direct

PASSWORD = "Tr0ub4dor&3-horse-staple"
CUSTOMER = "Wang Xiaoming Zqx"
CUSTOMER_ZH = "张秘密"
PHONE = "+86 139 8765 4321"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("observability")
    url = f"sqlite:///{folder / 'fieldsync.db'}"
    env = {
        "FIELDSYNC_LOG_FORMAT": "json",
        "FIELDSYNC_LOG_LEVEL": "info",
        "FIELDSYNC_ACCESS_LOG": "true",
    }
    proc = ServerProcess(url, env=env, quiet=False, log_path=folder / "server.log")
    proc.prepare()
    create_user_direct(url, "alice", PASSWORD, role="manager", user_id="u-alice")
    with proc:
        yield proc


def scrape(server: ServerProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = httpx.get(f"{server.url}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def total(samples: dict[Any, float], name: str, **labels: str) -> float:
    return sum(
        value
        for (n, found), value in samples.items()
        if n == name and all((k, v) in found for k, v in labels.items())
    )


def full_sync(server: ServerProcess, tmp_path: Path) -> tuple[Store, SyncClient]:
    store = Store.open(tmp_path / "alice.db", "device-pass", schema=CRM_SCHEMA, kdf=FAST_KDF)
    client = SyncClient(store, HttpTransport(server.url), SyncConfig())
    client.login("alice", PASSWORD, device_name="Alice's phone")
    store.collection("customers").insert({"name": CUSTOMER, "status": "potential", "phone": PHONE})
    store.collection("customers").insert({"name": CUSTOMER_ZH, "status": "intent"})
    report = client.sync()
    assert (report.applied, report.pulled) == (2, 2)
    return store, client


def test_a_sync_moves_the_metrics_and_leaves_no_secret_in_the_logs(
    server: ServerProcess, tmp_path: Path
) -> None:
    before = scrape(server)
    store, _client = full_sync(server, tmp_path)
    # The manager's browser: a sign-in, a token refresh (the refresh token in a body), a
    # search for the customer by name (the query string holds the name), a wrong
    # password, and a request id chosen by a proxy.
    first = server.login("alice", PASSWORD, device_id="dev-browser")
    refreshed = httpx.post(
        f"{server.url}/v1/auth/refresh",
        json={"refresh_token": first["refresh_token"], "device_id": "dev-browser"},
    )
    assert refreshed.status_code == 200
    tokens = refreshed.json()
    headers = {"Authorization": f"Bearer {tokens['access_token']}", "X-Request-ID": "proxy-42"}
    found = httpx.get(
        f"{server.url}/v1/manager/records/customers", params={"q": CUSTOMER}, headers=headers
    )
    assert found.status_code == 200 and found.json()["total"] == 1
    assert found.headers["x-request-id"] == "proxy-42"
    wrong = httpx.post(
        f"{server.url}/v1/auth/login",
        json={"username": "alice", "password": PASSWORD + "x", "device_id": "dev-wrong"},
    )
    assert wrong.status_code == 401
    after = scrape(server)

    push, pull = "/v1/sync/push", "/v1/sync/pull"
    name = "fieldsync_http_request_duration_seconds_count"
    assert total(after, name, route=push) >= total(before, name, route=push) + 1
    assert total(after, name, route=pull) >= total(before, name, route=pull) + 1
    assert total(after, name, route="/v1/auth/login", status="401") >= 1
    assert (
        total(after, "fieldsync_http_request_duration_seconds_bucket", route=push, le="+Inf") >= 1
    )
    applied = "fieldsync_mutations_total"
    assert total(after, applied, status="applied") == total(before, applied, status="applied") + 2
    assert total(after, "fieldsync_pull_changes_total") >= 2
    assert total(after, "fieldsync_devices", state="live") >= 1
    assert ("fieldsync_db_pool_connections", (("state", "checked_out"),)) in after
    store.close()

    server.stop()  # every line written
    assert server.log_path is not None
    log = server.log_path.read_text(encoding="utf-8")
    secrets = {
        "password": PASSWORD,
        "access token": tokens["access_token"],
        "refresh token": tokens["refresh_token"],
        "first access token": first["access_token"],
        "first refresh token": first["refresh_token"],
        "customer name": CUSTOMER,
        "customer name (zh)": CUSTOMER_ZH,
        "customer name (url-encoded)": CUSTOMER.replace(" ", "+"),
        "phone": PHONE,
    }
    leaked = [what for what, value in secrets.items() if value in log]
    assert not leaked, f"the server log holds: {leaked}"

    lines = [json.loads(line) for line in log.splitlines() if line.strip()]
    access = [x for x in lines if x["logger"] == "fieldsync.access"]
    routes = {x.get("route") for x in access}
    assert {push, pull, "/v1/auth/login", "/v1/manager/records/{collection}"} <= routes
    assert all(x.get("request_id") for x in access)
    assert any(x["request_id"] == "proxy-42" for x in access)
    assert any(x.get("device_id") == store.device_id for x in access if x.get("route") == push)
    server.start()


def test_health_and_readiness(server: ServerProcess) -> None:
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{server.url}/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready"
    assert body["migrations"]["current"] == body["migrations"]["head"] is not None
