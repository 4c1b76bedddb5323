"""``fieldsync doctor`` rules, one situation each, through the manager API of an
in-process server on SQLite, shared by the module: each test uses its own new devices.
(The SQL the rules read is tested on both databases in ``test_fleet_health.py``; the
real-server scenarios are in ``test_doctor_real_server.py``.)"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from server.models import RefreshToken
from sync_protocol import HybridLogicalClock
from tests.server.conftest import World, build_world, customer_fields, new_id
from tests.server.manager.conftest import Web

DAY_MS = 86_400_000


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    path: Path = tmp_path_factory.mktemp("doctor") / "fieldsync.db"
    w, client = build_world(f"sqlite:///{path}")
    with client:
        yield w
    w.context.engine.dispose()


def diagnosis(world: World, device_id: str, as_user: str = "mgr_a") -> dict[str, Any]:
    response = Web(world, as_user).get(f"/v1/manager/devices/{device_id}/diagnosis")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def codes(found: dict[str, Any]) -> list[str]:
    return [f["code"] for f in found["findings"]]


def test_a_device_that_synced_and_is_up_to_date_is_healthy(world: World) -> None:
    phone = world.phone("rep_a1")
    phone.push_one("customers", new_id("c"), customer_fields())
    phone.sync_down()
    found = diagnosis(world, phone.device_id)
    assert (found["verdict"], found["findings"]) == ("healthy", [])
    assert found["headline"].startswith("Syncing normally")


def test_never_synced(world: World) -> None:
    phone = world.phone("rep_a1")
    found = diagnosis(world, phone.device_id)
    assert (found["verdict"], codes(found)) == ("broken", ["never_synced"])
    assert "never synced" in found["headline"]


def test_revoked_and_still_trying(world: World) -> None:
    phone = world.phone("rep_a1")
    phone.sync_down()
    assert (
        Web(world, "mgr_a").post(f"/v1/manager/devices/{phone.device_id}/wipe").status_code == 200
    )
    assert phone.pull_raw().status_code == 403
    found = diagnosis(world, phone.device_id)
    assert codes(found) == ["revoked"]
    [finding] = found["findings"]
    assert "told to erase its data" in finding["summary"]
    assert "was told to stop" in finding["summary"]


def test_token_expired_or_signed_out(world: World) -> None:
    expired = world.phone("rep_a1")
    expired.sync_down()
    with world.context.sessions() as session:
        session.execute(
            update(RefreshToken)
            .where(RefreshToken.device_id == expired.device_id)
            .values(expires_at=datetime.now(UTC) - timedelta(days=2))
        )
        session.commit()
    found = diagnosis(world, expired.device_id)
    assert codes(found) == ["token_expired"]
    assert "sign-in expired 2 days ago" in found["headline"]

    signed_out = world.phone("rep_a2")
    signed_out.sync_down()
    assert world.client.post("/v1/auth/logout", headers=signed_out.headers).status_code == 204
    assert "token_expired" in codes(diagnosis(world, signed_out.device_id))


def test_schema_too_old(world: World) -> None:
    phone = world.phone("rep_a1")
    phone.sync_down()
    served = world.context.schema
    world.context.schema = dataclasses.replace(served, min_client_version=2)
    try:
        assert phone.pull_raw().json()["error"]["code"] == "schema_too_old"
        found = diagnosis(world, phone.device_id)
    finally:
        world.context.schema = served
    assert codes(found)[0] == "schema_too_old"
    assert "v1" in found["headline"] and "v2" in found["headline"]


def test_a_clock_three_days_ahead_seen_in_its_timestamps(world: World) -> None:
    phone = world.phone("rep_a1")
    phone.clock = HybridLogicalClock(
        phone.device_id, wall=lambda: int(time.time() * 1000) + 3 * DAY_MS
    )
    [result] = phone.push([phone.mutation("customers", new_id("c"), customer_fields())])
    assert result["status"] == "applied"  # clamped, with a warning
    phone.sync_down()
    found = diagnosis(world, phone.device_id)
    assert (found["verdict"], codes(found)) == ("attention", ["clock_skewed"])
    assert "3 days ahead of the server" in found["headline"]

    # A later push with a correct clock clears it.
    phone.clock = HybridLogicalClock(phone.device_id)
    phone.push_one("customers", new_id("c"), customer_fields())
    assert codes(diagnosis(world, phone.device_id)) == []


def test_a_clock_reported_behind(world: World) -> None:
    phone = world.phone("rep_a1")
    behind = int(time.time() * 1000) - 2 * DAY_MS
    phone.pull_raw(device_status={"device_clock_ms": behind})
    found = diagnosis(world, phone.device_id)
    assert "2 days behind the server" in found["headline"]


def test_poison_write_blocking_the_outbox(world: World) -> None:
    phone = world.phone("rep_a1")
    phone.sync_down()
    recorder = world.context.ops.activity
    now = int(time.time() * 1000)
    # The device says 6 writes wait; three pushes in a row fail on the server.
    recorder.report(
        phone.device_id,
        now_ms=now,
        status=None,
        schema_version=1,
        pending_total=6,
    )
    for i in range(3):
        recorder.error(
            phone.device_id, now_ms=now + i + 1, code="internal_error", endpoint="/v1/sync/push"
        )
    found = diagnosis(world, phone.device_id)
    assert (found["verdict"], codes(found)[0]) == ("broken", "poison_write")
    assert "last 3 pushes failed with `internal_error`" in found["headline"]
    assert "6 writes are queued" in found["headline"]
    # Two failures are not "stuck" yet: the app retries.
    other = world.phone("rep_a2")
    other.sync_down()
    now = int(time.time() * 1000) + 10
    for i in range(2):
        recorder.error(
            other.device_id, now_ms=now + i + 1, code="internal_error", endpoint="/v1/sync/push"
        )
    assert codes(diagnosis(world, other.device_id)) == ["server_errors"]


def test_rejected_writes_wait_on_the_phone(world: World) -> None:
    phone = world.phone("rep_a1")
    bad = phone.mutation("customers", new_id("c"), {"name": "x", "status": "no-such-status"})
    assert phone.push([bad])[0]["status"] == "rejected"
    phone.sync_down()
    found = diagnosis(world, phone.device_id)
    assert codes(found) == ["rejected_writes"]
    assert "`validation_failed`" in found["headline"]


def test_unreachable_from_its_last_attempts(world: World) -> None:
    phone = world.phone("rep_a1")
    phone.sync_down()
    status = {
        "failed_attempts": 7,
        "last_error_code": "network",
        "last_error_at_ms": int(time.time() * 1000) - 30_000,
        "pending_count": 2,
        "oldest_pending_age_s": 2 * 86400,
    }
    phone.pull_raw(phone.checkpoint, device_status=status)
    found = diagnosis(world, phone.device_id)
    assert codes(found) == ["unreachable", "pending_old"]
    assert "could not reach the server in its last 7 attempts" in found["headline"]


def test_behind_by_many_changes(world: World) -> None:
    reader = world.phone("rep_a1")
    reader.sync_down()
    writer = world.phone("rep_a1")
    for _ in range(4):
        writer.push_one("customers", new_id("c"), customer_fields())
    # Those changes are two hours old (as if the reader had been away since).
    with world.context.sessions() as session:
        from server.models import Record

        session.execute(update(Record).values(updated_at_ms=int(time.time() * 1000) - 7_200_000))
        session.commit()
    found = diagnosis(world, reader.device_id)
    assert codes(found) == ["behind"]
    assert found["headline"].startswith("Behind by 4 changes, the oldest from 2 hours ago")


def test_managers_only_diagnose_their_team(world: World) -> None:
    phone = world.phone("rep_b1")
    assert (
        Web(world, "mgr_a").get(f"/v1/manager/devices/{phone.device_id}/diagnosis").status_code
        == 404
    )
    assert (
        Web(world, "rep_a1").get(f"/v1/manager/devices/{phone.device_id}/diagnosis").status_code
        == 403
    )
    assert diagnosis(world, phone.device_id, as_user="admin")["verdict"] == "broken"
