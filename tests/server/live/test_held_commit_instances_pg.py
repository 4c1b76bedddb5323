"""Writers on two server instances on one PostgreSQL, one push held open at
``push.before_commit`` (a fault-injection point, not a sleep) while later pushes on the
other instance commit: no pull — from either instance — moves its checkpoint past the
held push's versions, and once it commits a pull delivers it. Then the same with the
roles of the instances swapped. (The random-hold variant with four writers is
test_late_commit_instances_pg.py.)"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from sync_protocol import HybridLogicalClock
from tests.support.hold_server import HEADER
from tests.support.live import module_database
from tests.support.server_proc import ServerProcess, create_user_direct

pytestmark = pytest.mark.postgres

PASSWORD = "correct horse battery staple"
#: Outside the range of the server's own advisory keys (writer marks are < 2**48).
HOLD_KEY = (1 << 50) + 17


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[ServerProcess, ServerProcess, str]]:
    with module_database() as url:
        module = "tests.support.hold_server"
        a = ServerProcess(url, module=module)
        a.prepare()
        for name in ("rep0", "rep1"):
            create_user_direct(url, name, PASSWORD, user_id=f"u-{name}")
        create_user_direct(url, "admin", PASSWORD, role="admin", user_id="u-admin")
        b = ServerProcess(url, module=module, migrate=False)
        with a, b:
            yield a, b, url.replace("postgresql+psycopg", "postgresql")


class Device:
    def __init__(self, url: str, username: str) -> None:
        self.id = f"dev-{username}-{uuid.uuid4().hex[:6]}"
        self.client = httpx.Client(base_url=url, timeout=60)
        response = self.client.post(
            "/v1/auth/login",
            json={"username": username, "password": PASSWORD, "device_id": self.id},
        )
        response.raise_for_status()
        self.client.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
        self.clock = HybridLogicalClock(self.id)
        self.checkpoint: str | None = None

    def push(self, record_ids: list[str], headers: dict[str, str] | None = None) -> list[int]:
        mutations = [
            {
                "id": uuid.uuid4().hex,
                "collection": "customers",
                "record_id": rid,
                "op": "upsert",
                "fields": {"name": f"客户 {rid}", "status": "potential"},
                "hlc": self.clock.now().encode(),
            }
            for rid in record_ids
        ]
        response = self.client.post(
            "/v1/sync/push",
            json={"device_id": self.id, "schema_version": 1, "mutations": mutations},
            headers=headers or {},
        )
        response.raise_for_status()
        results = response.json()["results"]
        assert [r["status"] for r in results] == ["applied"] * len(record_ids), results
        return [int(r["version"]) for r in results]

    def pull(self, client: httpx.Client | None = None) -> dict[str, int]:
        """Pull to the end through ``client`` (another instance) or this device's own."""
        seen: dict[str, int] = {}
        more = True
        while more:
            response = (client or self.client).post(
                "/v1/sync/pull",
                json={"device_id": self.id, "schema_version": 1, "checkpoint": self.checkpoint},
                headers={"Authorization": self.client.headers["Authorization"]},
            )
            response.raise_for_status()
            page = response.json()
            seen.update({c["record_id"]: c["version"] for c in page["changes"]})
            self.checkpoint, more = page["checkpoint"], page["has_more"]
        return seen


def _checkpoint_version(checkpoint: str | None) -> int:
    from server.repository.pull import parse_checkpoint

    parsed = parse_checkpoint(checkpoint)
    return parsed[1] if parsed else 0


def _held(admin: psycopg.Connection[Any]) -> bool:
    """A server connection is waiting for the test's hold lock (the push is at the point)."""
    row = admin.execute(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
        "AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) = %s",
        (HOLD_KEY,),
    ).fetchone()
    return bool(row and row[0])


@pytest.mark.parametrize("held_on", [0, 1])
def test_no_pull_skips_a_push_held_open_on_the_other_instance(
    pair: tuple[ServerProcess, ServerProcess, str], held_on: int
) -> None:
    a, b, dsn = pair
    instances = [a, b]
    slow = Device(instances[held_on].url, "rep0")
    fast = Device(instances[1 - held_on].url, "rep1")
    puller = Device(a.url, "admin")
    other = httpx.Client(base_url=b.url, timeout=60)
    puller.pull()  # start from the current end
    tag = uuid.uuid4().hex[:6]
    held_ids = [f"held-{tag}-{k}" for k in range(3)]
    later_ids = [f"later-{tag}-{k}" for k in range(3)]

    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_advisory_lock(%s)", (HOLD_KEY,))
        held_versions: list[int] = []
        errors: list[BaseException] = []

        def push_held() -> None:
            try:
                held_versions.extend(slow.push(held_ids, {HEADER: str(HOLD_KEY)}))
            except BaseException as exc:
                errors.append(exc)

        writer = threading.Thread(target=push_held)
        writer.start()
        try:
            while not _held(admin):  # wait for the push to reach push.before_commit
                assert writer.is_alive(), errors
                admin.execute("SELECT pg_sleep(0.01)")
            # Later pushes on the other instance commit while the held one is open; their
            # versions are higher than the held push's.
            later = fast.push(later_ids)
            # Pulls through both instances: none may move past the held push's versions,
            # so none may deliver the later (committed) changes yet either.
            for client in (None, other):
                seen = puller.pull(client)
                assert not set(seen) & set(held_ids + later_ids), seen
            horizon = _checkpoint_version(puller.checkpoint)
        finally:
            admin.execute("SELECT pg_advisory_unlock(%s)", (HOLD_KEY,))
            writer.join(60)
    assert not errors, errors
    assert horizon < min(held_versions) < min(later), (horizon, held_versions, later)
    # Committed now: the next pull (through the other instance) delivers both pushes.
    seen = puller.pull(other)
    assert {rid: seen.get(rid) for rid in held_ids} == dict(
        zip(held_ids, held_versions, strict=True)
    )
    assert {rid: seen.get(rid) for rid in later_ids} == dict(zip(later_ids, later, strict=True))
    for device in (slow, fast, puller):
        device.client.close()
    other.close()
