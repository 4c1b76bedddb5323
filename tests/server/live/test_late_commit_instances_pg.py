"""Writers on two server instances whose commits are held back at random, and a device
pulling all the while through both instances: the puller must end up with every
acknowledged change — its checkpoint never moves past a version that commits late,
whichever instance allocated it. (The in-process variant with writers in one process is
tests/server/test_late_commit_pg.py.)"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from sync_protocol import HybridLogicalClock
from tests.support.live import module_database
from tests.support.server_proc import ServerProcess, create_user_direct

pytestmark = pytest.mark.postgres

PASSWORD = "correct horse battery staple"
WRITERS = 4
BATCHES = 10


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[ServerProcess, ServerProcess]]:
    with module_database() as url:
        module = "tests.support.late_commit_server"
        a = ServerProcess(url, module=module)
        a.prepare()
        for n in range(WRITERS):
            create_user_direct(url, f"rep{n}", PASSWORD, user_id=f"u-rep{n}")
        create_user_direct(url, "admin", PASSWORD, role="admin", user_id="u-admin")
        b = ServerProcess(url, module=module, migrate=False)
        with a, b:
            yield a, b


def _login(url: str, username: str) -> tuple[str, str]:
    device = f"dev-{username}-{uuid.uuid4().hex[:6]}"
    response = httpx.post(
        f"{url}/v1/auth/login",
        json={"username": username, "password": PASSWORD, "device_id": device},
        timeout=30,
    )
    response.raise_for_status()
    return device, response.json()["access_token"]


def test_a_puller_never_skips_a_late_commit_from_either_instance(
    pair: tuple[ServerProcess, ServerProcess],
) -> None:
    urls = [p.url for p in pair]
    acknowledged: dict[str, int] = {}
    lock = threading.Lock()
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            url = urls[n % 2]
            device, token = _login(url, f"rep{n}")
            clock = HybridLogicalClock(device)
            with httpx.Client(base_url=url, timeout=30) as client:
                for b in range(BATCHES):
                    mutations = [
                        {
                            "id": f"m-{n}-{b}-{k}",
                            "collection": "customers",
                            "record_id": f"c-{n}-{b % 3}-{k}",  # new records and updates
                            "op": "upsert",
                            "fields": {"name": f"客户 {n}-{b}-{k}", "status": "potential"},
                            "hlc": clock.now().encode(),
                        }
                        for k in range(3)
                    ]
                    response = client.post(
                        "/v1/sync/push",
                        json={"device_id": device, "schema_version": 1, "mutations": mutations},
                        headers={"Authorization": f"Bearer {token}"},
                    )
                    response.raise_for_status()
                    with lock:
                        for m, r in zip(mutations, response.json()["results"], strict=True):
                            assert r["status"] == "applied", r
                            rid = m["record_id"]
                            acknowledged[rid] = max(acknowledged.get(rid, 0), r["version"])
        except BaseException as exc:
            errors.append(exc)

    seen: dict[str, int] = {}
    device, token = _login(urls[0], "admin")
    checkpoint: str | None = None
    pulls = 0

    def pull_once(client: httpx.Client) -> bool:
        nonlocal checkpoint, pulls
        body = {"device_id": device, "schema_version": 1, "checkpoint": checkpoint, "limit": 7}
        response = client.post(
            "/v1/sync/pull", json=body, headers={"Authorization": f"Bearer {token}"}
        )
        response.raise_for_status()
        page = response.json()
        for change in page["changes"]:
            seen[change["record_id"]] = change["version"]
        checkpoint = page["checkpoint"]
        pulls += 1
        return bool(page["has_more"])

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for t in threads:
        t.start()
    clients = [httpx.Client(base_url=url, timeout=30) for url in urls]
    try:
        while any(t.is_alive() for t in threads):
            pull_once(clients[pulls % 2])  # small pages, alternating instances
            time.sleep(0.002)
        for t in threads:
            t.join()
        while pull_once(clients[pulls % 2]):
            pass
    finally:
        for client in clients:
            client.close()
    assert not errors, errors
    assert len(acknowledged) == WRITERS * 3 * 3
    missing = {rid: v for rid, v in acknowledged.items() if seen.get(rid, 0) < v}
    assert missing == {}, f"the puller skipped late commits: {missing}"
    assert pulls > 20  # it really pulled while the writers wrote
