"""Mutation groups (PLAN contract 1): all members of one push sharing a ``group`` apply
atomically or are all rejected — on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from server.models import AppliedMutation, Record
from server.repository import read_counter
from tests.server.conftest import Phone, World, customer_fields, new_id


def grouped(m: dict[str, Any], group: str) -> dict[str, Any]:
    return {**m, "group": group}


def stored(world: World, collection: str, record_id: str) -> Any:
    with world.context.engine.connect() as conn:
        return conn.execute(
            select(Record.version, Record.data).where(
                Record.collection == collection, Record.record_id == record_id
            )
        ).one_or_none()


def counter(world: World) -> int:
    with world.context.engine.connect() as conn:
        return read_counter(conn).counter


def conversion(phone: Phone, group: str, *, bad_last: bool = False) -> list[dict[str, Any]]:
    """A lead conversion as a device sends it offline: customer, contact, opportunity,
    lead marked converted — with an invalid last member when ``bad_last``."""
    cid, lid = new_id("c"), new_id("l")
    lead_fields: dict[str, Any] = {"status": "converted", "converted_customer_id": cid}
    if bad_last:
        lead_fields["status"] = "not-a-status"
    return [
        grouped(phone.mutation("leads", lid, {"name": "王五", "status": "qualified"}), group),
        grouped(phone.mutation("customers", cid, customer_fields("王五")), group),
        grouped(
            phone.mutation("contacts", new_id("p"), {"customer_id": cid, "name": "王五"}), group
        ),
        grouped(phone.mutation("leads", lid, lead_fields), group),
    ]


def test_a_valid_group_applies_every_member(world: World) -> None:
    rep = world.phone("rep_a1")
    rep.sync_down()  # the module shares one world: start from now
    results = rep.push(conversion(rep, "g-ok"))
    assert [r["status"] for r in results] == ["applied"] * 4
    changes = rep.sync_down()
    assert sorted(c["collection"] for c in changes) == ["contacts", "customers", "leads"]


def test_a_group_whose_last_member_is_invalid_leaves_no_trace(world: World) -> None:
    rep = world.phone("rep_a1")
    rep.sync_down()  # the module shares one world: start from now
    before = counter(world)
    batch = conversion(rep, "g-bad", bad_last=True)
    results = rep.push(batch)
    assert [r["status"] for r in results] == ["rejected"] * 4
    assert results[3]["error"]["code"] == "validation_failed"
    for r in results[:3]:
        assert r["error"]["code"] == "group_rejected"
        assert r["error"]["details"] == {"group": "g-bad", "failed_mutation_id": batch[3]["id"]}
        assert r["version"] is None
    if world.db_url.startswith("sqlite"):
        assert counter(world) == before
    # (PostgreSQL takes versions from a sequence, which a rollback does not rewind: the
    # rejected group's are gaps — nothing is stored at them, the pull below is empty.)
    for m in batch:
        assert stored(world, m["collection"], m["record_id"]) is None
    assert rep.sync_down() == []
    with world.context.engine.connect() as conn:  # results are stored: retries answer them
        n = conn.scalar(
            select(func.count())
            .select_from(AppliedMutation)
            .where(AppliedMutation.mutation_id.in_([m["id"] for m in batch]))
        )
    assert n == 4


def test_a_failed_group_restores_the_records_it_changed(world: World) -> None:
    rep = world.phone("rep_a1")
    rep.sync_down()  # the module shares one world: start from now
    cid = new_id("c")
    first = rep.push_one("customers", cid, customer_fields("原名"))
    version = first["version"]
    batch = [
        grouped(rep.mutation("customers", cid, {"name": "新名"}, base_version=version), "g-1"),
        grouped(rep.mutation("customers", cid, {"tier": "high"}, base_version=version), "g-1"),
        grouped(rep.mutation("tasks", new_id("t"), {"customer_id": cid}), "g-1"),  # no title
    ]
    results = rep.push(batch)
    assert [r["error"]["code"] for r in results] == [
        "group_rejected",
        "group_rejected",
        "validation_failed",
    ]
    row = stored(world, "customers", cid)
    assert row.version == version
    assert '"原名"' in row.data and "high" not in row.data


def test_other_mutations_of_the_push_are_independent_of_a_group(world: World) -> None:
    rep = world.phone("rep_a1")
    rep.sync_down()  # the module shares one world: start from now
    alone_before, alone_after = new_id("c"), new_id("c")
    batch = [
        rep.mutation("customers", alone_before, customer_fields("甲")),
        grouped(rep.mutation("customers", new_id("c"), customer_fields("乙")), "g-2"),
        rep.mutation("customers", alone_after, customer_fields("丙")),
        grouped(rep.mutation("customers", new_id("c"), {"name": "no status"}), "g-2"),
    ]
    results = rep.push(batch)
    assert [r["status"] for r in results] == ["applied", "rejected", "applied", "rejected"]
    assert results[1]["error"]["code"] == "group_rejected"
    assert results[3]["error"]["code"] == "validation_failed"
    assert {c["record_id"] for c in rep.sync_down()} == {alone_before, alone_after}


def test_group_members_apply_together_at_the_first_members_position(world: World) -> None:
    rep = world.phone("rep_a1")
    rep.sync_down()  # the module shares one world: start from now
    cid = new_id("c")
    batch = [
        grouped(rep.mutation("customers", cid, customer_fields("甲")), "g-3"),
        rep.mutation("contacts", new_id("p"), {"customer_id": cid, "name": "联系人"}),
        grouped(rep.mutation("customers", cid, {"tier": "high"}), "g-3"),
    ]
    results = rep.push(batch)
    assert [r["status"] for r in results] == ["applied"] * 3
    # the ungrouped contact came after the whole group: its version is the highest
    assert results[1]["version"] > results[2]["version"] >= results[0]["version"]


def test_a_retried_group_answers_duplicate_consistently(world: World) -> None:
    rep = world.phone("rep_a1")
    rep.sync_down()  # the module shares one world: start from now
    good, bad = conversion(rep, "g-good"), conversion(rep, "g-failed", bad_last=True)
    first = rep.push(good + bad)
    rep.sync_down()
    before = counter(world)
    again = rep.push(good + bad)
    assert [r["status"] for r in again] == ["duplicate"] * 8
    for was, now in zip(first, again, strict=True):
        assert now["version"] == was["version"]
        assert now["error"] == was["error"]
    assert [r["error"] for r in again[:4]] == [None] * 4
    assert [r["error"]["code"] for r in again[4:]] == ["group_rejected"] * 3 + ["validation_failed"]
    if world.db_url.startswith("sqlite"):
        assert counter(world) == before
    # (PostgreSQL: the retry is recognised by the INSERT that would store its results, after
    # the batch took versions from the sequence — gaps, nothing is stored at them.)
    assert rep.sync_down() == []


def test_a_new_member_cannot_join_a_group_decided_earlier(world: World) -> None:
    rep = world.phone("rep_a1")
    rep.sync_down()  # the module shares one world: start from now
    batch = conversion(rep, "g-once")
    rep.push(batch)
    late = grouped(rep.mutation("customers", new_id("c"), customer_fields("晚")), "g-once")
    results = rep.push([*batch, late])
    assert [r["status"] for r in results] == ["duplicate"] * 4 + ["rejected"]
    assert results[4]["error"]["code"] == "group_rejected"
    assert results[4]["error"]["details"]["failed_mutation_id"] == batch[0]["id"]
    assert stored(world, "customers", late["record_id"]) is None


def test_a_rejected_group_rolls_back_the_conflicts_it_opened(world: World) -> None:
    manager, rep = world.phone("mgr_a"), world.phone("rep_a1")
    rep.sync_down()
    cid = new_id("c")
    created = rep.push_one("customers", cid, customer_fields())
    kid = new_id("k")
    contract = {
        "customer_id": cid,
        "number": "HT-1",
        "status": "draft",
        "amount": 100,
    }
    v = rep.push_one("contracts", kid, contract)["version"]
    manager.push_one("contracts", kid, {"amount": 200}, base_version=v, base={"amount": 100})
    batch = [  # a concurrent edit of a manual field opens a conflict ... then fails
        grouped(
            rep.mutation("contracts", kid, {"amount": 300}, base_version=v, base={"amount": 100}),
            "g-4",
        ),
        grouped(
            rep.mutation("customers", cid, {"status": "bogus"}, base_version=created["version"]),
            "g-4",
        ),
    ]
    results = rep.push(batch)
    assert [r["error"]["code"] for r in results] == ["group_rejected", "validation_failed"]
    assert results[0]["conflict_ids"] == []
    assert not [c for c in rep.sync_down() if c["collection"] == "_conflicts"]
    with world.context.engine.connect() as conn:
        stored_conflicts = conn.scalar(
            select(func.count())
            .select_from(Record)
            .where(Record.collection == "_conflicts", Record.data.like(f'%"{kid}"%'))
        )
    assert stored_conflicts == 0
