"""Fleet health in the manager device API: what the server saw and what devices reported
(``DeviceStatus`` on push and pull), stored per device through the buffered recorder."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pytest

from server.fleet.recorder import ActivityRecorder
from server.manager.common import aware
from sync_protocol import DeviceStatus
from tests.server.conftest import World, customer_fields, new_id
from tests.server.manager.conftest import Web

DAY_MS = 86_400_000


def health(web: Web, device_id: str) -> dict[str, Any]:
    response = web.get(f"/v1/manager/devices/{device_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_pending_writes_are_cleared_when_a_push_drains_them(world: World) -> None:
    mgr = Web(world, "mgr_a")
    phone = world.phone("rep_a1")
    three = [phone.mutation("customers", new_id("c"), customer_fields()) for _ in range(3)]
    status = {"pending_count": 5, "oldest_pending_age_s": 7200}
    assert phone.push_raw(three, device_status=status).status_code == 200
    device = health(mgr, phone.device_id)
    # 5 queued when sent, 3 answered: 2 still waiting, the oldest as reported.
    assert device["pending_writes"] == device["health"]["pending_writes"] == 2
    assert device["health"]["oldest_pending_age_s"] == 7200

    two = [phone.mutation("customers", new_id("c"), customer_fields()) for _ in range(2)]
    assert phone.push_raw(two, device_status={"pending_count": 2}).status_code == 200
    drained = health(mgr, phone.device_id)["health"]
    assert (drained["pending_writes"], drained["oldest_pending_age_s"]) == (0, None)
    assert drained["last_push_at"] is not None and drained["errors_in_a_row"] == 0

    # The older field still works (an app that does not send device_status yet).
    old = [phone.mutation("customers", new_id("c"), customer_fields())]
    assert phone.push_raw(old, pending_total=4).status_code == 200
    assert health(mgr, phone.device_id)["pending_writes"] == 3


def test_a_rejected_write_counts_as_a_dead_letter(world: World) -> None:
    mgr = Web(world, "mgr_a")
    phone = world.phone("rep_a1")
    bad = phone.mutation("customers", new_id("c"), {"name": "x", "status": "no-such-status"})
    status = {"pending_count": 1, "dead_letters": 2}
    [result] = phone.push_raw([bad], device_status=status).json()["results"]
    assert result["status"] == "rejected"
    found = health(mgr, phone.device_id)["health"]
    assert (found["dead_letters"], found["pending_writes"]) == (3, 0)


def test_lag_counts_the_changes_in_scope_the_device_has_not_pulled(world: World) -> None:
    mgr = Web(world, "mgr_a")
    reader = world.phone("rep_a1")
    writer = world.phone("rep_a1")
    stranger = world.phone("rep_b1")
    assert health(mgr, reader.device_id)["health"]["lag"] is None  # never pulled
    reader.sync_down()
    assert health(mgr, reader.device_id)["health"]["lag"] == {
        "changes": 0,
        "capped": False,
        "seconds": None,
        "resync_required": False,
    }
    for _ in range(3):
        writer.push_one("customers", new_id("c"), customer_fields())
    stranger.push_one("customers", new_id("c"), customer_fields())  # outside rep_a1's scope
    lag = health(mgr, reader.device_id)["health"]["lag"]
    assert (lag["changes"], lag["resync_required"]) == (3, False)
    assert 0 <= lag["seconds"] < 60
    reader.sync_down()
    after = health(mgr, reader.device_id)["health"]
    assert after["lag"]["changes"] == 0
    assert after["checkpoint"] == reader.checkpoint


def test_reports_give_clock_offset_identity_and_the_devices_last_error(world: World) -> None:
    mgr = Web(world, "mgr_a")
    phone = world.phone("rep_a1")
    ahead = int(time.time() * 1000) + 3 * DAY_MS
    status = {
        "device_clock_ms": ahead,
        "device_name": "Pixel 7",
        "platform": "android 14",
        "app_version": "1.4.0",
        "schema_version": 1,
        "failed_attempts": 4,
        "last_error_code": "network",
        "last_error_at_ms": ahead - 60_000,
        "open_conflicts": 2,
    }
    phone.pull_raw(device_status=status)
    device = health(mgr, phone.device_id)
    assert (device["name"], device["platform"], device["app_version"]) == (
        "Pixel 7",
        "android 14",
        "1.4.0",
    )
    found = device["health"]
    assert abs(found["clock_offset_ms"] - 3 * DAY_MS) < 60_000
    assert (found["failed_attempts"], found["open_conflicts"], found["schema_version"]) == (4, 2, 1)
    # The device's error time is put back on the server's clock (about a minute ago).
    error = found["last_error"]
    assert (error["code"], error["source"]) == ("network", "device")
    age_s = time.time() - aware_timestamp(error["at"])
    assert 0 < age_s < 300

    # A later report without an error clears it; counts it left out keep their value.
    phone.pull_raw(device_status={"failed_attempts": 0})
    found = health(mgr, phone.device_id)["health"]
    assert found["last_error"] is None
    assert (found["failed_attempts"], found["open_conflicts"]) == (0, 2)


def aware_timestamp(text: str) -> float:
    from datetime import datetime

    return aware(datetime.fromisoformat(text.replace("Z", "+00:00"))).timestamp()


def test_errors_the_server_answered_are_counted_until_a_success(world: World) -> None:
    mgr = Web(world, "mgr_a")
    phone = world.phone("rep_a1")
    world.context.schema = dataclasses.replace(
        world.context.schema, version=3, min_client_version=2
    )
    for _ in range(2):
        refused = phone.push_raw([phone.mutation("customers", new_id("c"), customer_fields())])
        assert refused.json()["error"]["code"] == "schema_too_old"
    found = health(mgr, phone.device_id)["health"]
    assert found["errors_in_a_row"] == 2
    assert found["last_error"]["code"] == "schema_too_old"
    assert (found["last_error"]["source"], found["last_error"]["endpoint"]) == (
        "server",
        "/v1/sync/push",
    )
    world.context.schema = dataclasses.replace(world.context.schema, min_client_version=1)
    assert phone.pull_raw().status_code == 200
    found = health(mgr, phone.device_id)["health"]
    assert (found["errors_in_a_row"], found["last_error"]) == (0, None)


def test_an_invalid_status_never_fails_the_request(world: World) -> None:
    mgr = Web(world, "mgr_a")
    phone = world.phone("rep_a1")
    junk = {"pending_count": -3, "device_name": "x" * 500, "future_field": {"a": 1}}
    pushed = phone.push_raw(
        [phone.mutation("customers", new_id("c"), customer_fields())], device_status=junk
    )
    assert pushed.status_code == 200, pushed.text
    assert phone.push_raw([], device_status="not an object").status_code == 200
    nulls = {name: None for name in DeviceStatus.model_fields}  # explicit nulls are fine
    assert phone.push_raw([], device_status=nulls).status_code == 200
    assert phone.pull_raw(device_status=nulls).status_code == 200
    device = health(mgr, phone.device_id)
    assert device["name"] == "x" * 128
    assert device["pending_writes"] is None  # the invalid count was dropped, not stored


def test_other_teams_devices_are_not_found(world: World) -> None:
    phone = world.phone("rep_b1")
    phone.pull_raw()
    assert Web(world, "mgr_a").get(f"/v1/manager/devices/{phone.device_id}").status_code == 404
    listed = Web(world, "mgr_b").get("/v1/manager/devices").json()["items"]
    [mine] = [d for d in listed if d["id"] == phone.device_id]
    assert mine["health"]["last_pull_at"] is not None


def test_the_device_status_model_is_tolerant() -> None:
    status = DeviceStatus.model_validate(
        {
            "pending_count": "7",
            "oldest_pending_age_s": 12.6,
            "dead_letters": -1,
            "last_error_code": "not a code!",
            "platform": "android\n14",
            "unknown": True,
        }
    )
    assert status.model_dump(exclude_none=True) == {
        "pending_count": 7,
        "oldest_pending_age_s": 13,
        "platform": "android 14",
    }


@pytest.mark.parametrize("order", ["newer-first", "older-first"])
def test_flushes_from_two_processes_keep_the_newest(world: World, order: str) -> None:
    """Two server processes buffer the same device; whichever flushes last, the stored
    health is the newest activity of each kind."""
    phone = world.phone("rep_a1")
    one = ActivityRecorder(world.context.engine)
    two = ActivityRecorder(world.context.engine)
    now = int(time.time() * 1000)
    one.report(phone.device_id, now_ms=now, status=DeviceStatus(pending_count=9), schema_version=1)
    one.pull(phone.device_id, now_ms=now, checkpoint="v1:1")
    two.report(
        phone.device_id, now_ms=now + 5, status=DeviceStatus(pending_count=1), schema_version=1
    )
    two.pull(phone.device_id, now_ms=now + 5, checkpoint="v1:2")
    one.error(phone.device_id, now_ms=now + 9, code="internal_error", endpoint="/v1/sync/push")
    two.error(phone.device_id, now_ms=now + 7, code="rate_limited", endpoint="/v1/sync/pull")
    first, second = (two, one) if order == "newer-first" else (one, two)
    first.flush()
    second.flush()
    found = health(Web(world, "mgr_a"), phone.device_id)["health"]
    assert (found["checkpoint"], found["pending_writes"]) == ("v1:2", 1)
    assert found["last_error"]["code"] == "internal_error"
    assert found["errors_in_a_row"] >= 1


def test_a_failed_flush_keeps_the_activity_for_the_next_one(world: World) -> None:
    phone = world.phone("rep_a1")
    recorder = ActivityRecorder(world.context.engine)
    now = int(time.time() * 1000)
    recorder.pull(phone.device_id, now_ms=now, checkpoint="v1:5")

    def broken(_entries: Any) -> None:
        raise RuntimeError("database went away")

    real = recorder._write
    recorder._write = broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        recorder.flush()
    recorder.report(
        phone.device_id, now_ms=now + 1, status=DeviceStatus(pending_count=4), schema_version=1
    )
    recorder.pull(phone.device_id, now_ms=now + 1, checkpoint="v1:6")
    recorder._write = real  # type: ignore[method-assign]
    assert recorder.flush() == 1
    found = health(Web(world, "mgr_a"), phone.device_id)["health"]
    assert (found["checkpoint"], found["pending_writes"]) == ("v1:6", 4)
