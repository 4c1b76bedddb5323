"""Mutation ids belong to the device that chose them (issue 12, defect 3).

* Two users (or two devices) using one mutation id never meet: each write applies.
* The same id with other content is ``mutation_id_reused`` — never a silent drop —
  and changes nothing; the same id with the same content is ``duplicate``.
* The content compared is what the device sent, before the server clamps its clock,
  so an honest retry of a clamped mutation is still a ``duplicate``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from server.models import AppliedMutation, Record
from sync_protocol import HybridLogicalClock
from tests.server.conftest import World, customer_fields, new_id


def test_one_mutation_id_used_by_two_users_applies_twice(sqlite_world: World) -> None:
    rep1, rep2 = sqlite_world.phone("rep_a1"), sqlite_world.phone("rep_b1")
    shared = "m-chosen-by-both"
    first = rep2.push_one("customers", "c-rep2", customer_fields("李四"), mutation_id=shared)
    second = rep1.push_one("customers", "c-rep1", customer_fields("张三"), mutation_id=shared)
    assert first["status"] == second["status"] == "applied"
    assert first["version"] != second["version"]
    pulled = rep1.sync_down()
    assert {c["record_id"] for c in pulled if c["collection"] == "customers"} == {"c-rep1"}
    with sqlite_world.context.sessions() as s:
        owners = dict(s.execute(select(Record.record_id, Record.owner_id)).tuples().all())
        keys = set(
            s.execute(select(AppliedMutation.user_id, AppliedMutation.mutation_id)).tuples().all()
        )
    assert owners == {"c-rep2": "u-rep_b1", "c-rep1": "u-rep_a1"}
    assert keys == {("u-rep_b1", shared), ("u-rep_a1", shared)}


def test_two_devices_of_one_user_have_their_own_ids(sqlite_world: World) -> None:
    phone, tablet = sqlite_world.phone("rep_a1"), sqlite_world.phone("rep_a1")
    a = phone.push_one("customers", "c-phone", customer_fields(), mutation_id="m-1")
    b = tablet.push_one("customers", "c-tablet", customer_fields(), mutation_id="m-1")
    assert a["status"] == b["status"] == "applied"


def test_reused_id_with_other_content_is_refused_and_changes_nothing(
    sqlite_world: World,
) -> None:
    phone = sqlite_world.phone("rep_a1")
    original = phone.mutation("customers", "c-1", customer_fields("张三"), mutation_id="m-x")
    assert phone.push([original])[0]["status"] == "applied"
    assert phone.push([original])[0]["status"] == "duplicate"
    other = phone.mutation("customers", "c-2", customer_fields("王五"), mutation_id="m-x")
    [reused] = phone.push([other])
    assert reused["status"] == "rejected"
    assert reused["error"]["code"] == "mutation_id_reused"
    assert reused["error"]["details"] == {"mutation_id": "m-x"}
    # Within one batch too, and the honest retry still answers duplicate afterwards.
    again = phone.push([other, original])
    assert [r["status"] for r in again] == ["rejected", "duplicate"]
    with sqlite_world.context.sessions() as s:
        assert list(s.scalars(select(Record.record_id))) == ["c-1"]


def test_a_retry_of_a_clamped_mutation_is_a_duplicate(sqlite_world: World) -> None:
    phone = sqlite_world.phone("rep_a1")
    ahead = HybridLogicalClock(phone.device_id, wall=lambda: 4_000_000_000_000)
    m: dict[str, Any] = phone.mutation("customers", new_id("c"), customer_fields())
    m["hlc"] = ahead.now().encode()  # ~2096: the server clamps it
    first = phone.push_raw([m])
    assert first.status_code == 200 and first.json()["warnings"][0]["code"] == "clock_skew"
    assert first.json()["results"][0]["status"] == "applied"
    retry = phone.push_raw([m]).json()["results"][0]
    assert retry["status"] == "duplicate"
    assert retry["version"] == first.json()["results"][0]["version"]
