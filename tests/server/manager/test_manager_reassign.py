"""A rep leaves: all 500 of their customers, with everything hanging off them, move to
another rep in one operation; the old rep's phone evicts them, the new rep's receives
them. On SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from server.models import AuditEntry, Record
from tests.server.conftest import World
from tests.server.manager.conftest import Web

CUSTOMERS = 500


def _seed(world: World) -> tuple[set[tuple[str, str]], list[dict[str, Any]]]:
    rep = world.phone("rep_a1")
    mutations: list[dict[str, Any]] = []
    records: set[tuple[str, str]] = set()
    for i in range(CUSTOMERS):
        cid = f"c-{i:04d}"
        mutations.append(rep.mutation("customers", cid, {"name": f"客户{i}", "status": "intent"}))
        mutations.append(
            rep.mutation("contacts", f"p-{i:04d}", {"customer_id": cid, "name": f"联系人{i}"})
        )
        records |= {("customers", cid), ("contacts", f"p-{i:04d}")}
        if i % 2 == 0:
            mutations.append(
                rep.mutation(
                    "activities",
                    f"a-{i:04d}",
                    {"customer_id": cid, "type": "visit", "occurred_at": "2026-11-01T10:00:00Z"},
                )
            )
            records.add(("activities", f"a-{i:04d}"))
    for start in range(0, len(mutations), 1000):
        results = rep.push(mutations[start : start + 1000])
        assert {r["status"] for r in results} == {"applied"}
    return records, mutations


def test_bulk_reassignment_of_a_leaving_reps_customers(world: World, mgr: Web) -> None:
    records, _ = _seed(world)
    old, new = world.phone("rep_a1"), world.phone("rep_a2")
    old.sync_down(limit=2000)
    new.sync_down(limit=2000)
    assert set(old.records) >= records
    assert not set(new.records) & records
    # Something of rep_a2's own stays put.
    own = new.push_one("customers", "c-own", {"name": "自己的", "status": "potential"})
    assert own["status"] == "applied"
    new.sync_down()

    response = mgr.post(
        "/v1/manager/customers/reassign-owner",
        json={"from_owner_id": world.users["rep_a1"], "new_owner_id": world.users["rep_a2"]},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["customers"] == CUSTOMERS
    assert body["moved_records"] == len(records)  # 500 customers + 500 contacts + 250 activities
    assert body["evicted_users"] == [world.users["rep_a1"]]  # mgr_a still sees them all
    assert body["evictions"] == len(records)

    # One operation: a single audit entry covers the whole move.
    with world.context.sessions() as session:
        entries = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "admin.reassign")
        ).all()
        assert len(entries) == 1
        owners = dict(
            session.execute(
                select(Record.owner_id, func.count())
                .where(Record.collection != "_conflicts")
                .group_by(Record.owner_id)
            ).all()
        )
    assert owners == {world.users["rep_a2"]: len(records) + 1}

    evicted = old.sync_down(limit=2000)
    assert {(c["collection"], c["record_id"]) for c in evicted if c["op"] == "evict"} == records
    assert not any(c["op"] == "upsert" for c in evicted)
    assert not set(old.records) & records  # the old phone holds none of them now

    received = new.sync_down(limit=2000)
    assert {(c["collection"], c["record_id"]) for c in received if c["op"] == "upsert"} == records
    assert new.records[("customers", "c-0007")]["owner_id"] == world.users["rep_a2"]
    assert new.records[("contacts", "p-0007")]["name"] == "联系人7"

    # A second call finds nothing left to move.
    again = mgr.post(
        "/v1/manager/customers/reassign-owner",
        json={"from_owner_id": world.users["rep_a1"], "new_owner_id": world.users["rep_a2"]},
    ).json()
    assert again["customers"] == 0


def test_single_reassignment_and_scope(world: World, mgr: Web) -> None:
    rep = world.phone("rep_a1")
    rep.push_one("customers", "c-x", {"name": "X", "status": "intent"})
    rep.push_one("tasks", "t-x", {"customer_id": "c-x", "title": "回访", "status": "open"})
    response = mgr.post(
        "/v1/manager/customers/reassign",
        json={"customer_ids": ["c-x"], "new_owner_id": world.users["rep_a2"]},
    )
    assert response.status_code == 200, response.text
    assert response.json()["moved_records"] == 2
    # Team B's manager may neither take nor give team A's customers.
    other = Web(world, "mgr_b")
    response = other.post(
        "/v1/manager/customers/reassign",
        json={"customer_ids": ["c-x"], "new_owner_id": world.users["rep_b1"]},
    )
    assert response.status_code == 403
    response = other.post(
        "/v1/manager/customers/reassign-owner",
        json={"from_owner_id": world.users["rep_a2"], "new_owner_id": world.users["rep_b1"]},
    )
    assert response.status_code == 403
    response = mgr.post(
        "/v1/manager/customers/reassign",
        json={"customer_ids": ["c-nope"], "new_owner_id": world.users["rep_a2"]},
    )
    assert response.status_code == 404
