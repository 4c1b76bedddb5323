"""The reporting table follows every change: a report always includes what was committed
before it started — edits, deletions, reassignments between teams, device pushes — and
a layout change rebuilds it (on SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest

from server.reports import facts
from tests.server.conftest import World, customer_fields
from tests.server.manager.conftest import Web


def statuses(web: Web) -> dict[str | None, int]:
    response = web.get("/v1/manager/reports/customers")
    assert response.status_code == 200, response.text
    dim = next(d for d in response.json()["dimensions"] if d["dimension"] == "status")
    return {g["value"]: g["customers"] for g in dim["groups"]}


def test_report_follows_edits_deletions_and_moves(
    world: World, mgr: Web, mgr_b: Web, admin: Web
) -> None:
    created: dict[str, Any] = mgr.create(
        "customers", {"name": "追踪客户", "status": "potential"}, owner_id="u-rep_a1"
    )
    cid = created["id"]
    assert statuses(mgr) == {"potential": 1}
    response = mgr.patch(
        f"/v1/manager/records/customers/{cid}",
        json={"fields": {"status": "intent"}, "base_version": created["version"]},
    )
    assert response.status_code == 200, response.text
    assert statuses(mgr) == {"intent": 1}
    # A rep's phone pushes a second customer: the manager's next report has it.
    phone = world.phone("rep_a2")
    assert (
        phone.push_one("customers", "c-phone", customer_fields("手机客户"))["status"] == "applied"
    )
    assert statuses(mgr) == {"potential": 1, "intent": 1}
    # Reassigned to team B: it leaves team A's figures and reaches team B's.
    moved = admin.post(
        "/v1/manager/customers/reassign", json={"customer_ids": [cid], "new_owner_id": "u-rep_b1"}
    )
    assert moved.status_code == 200, moved.text
    assert statuses(mgr) == {"potential": 1}
    assert statuses(mgr_b) == {"intent": 1}
    gone = admin.delete(f"/v1/manager/records/customers/{cid}")
    assert gone.status_code == 200, gone.text
    assert statuses(mgr_b) == {}
    assert statuses(admin) == {"potential": 1}


def test_catch_up_reads_only_new_changes_and_rebuilds_on_a_new_layout(
    world: World, mgr: Web, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = world.context.engine
    facts.catch_up(engine)
    for i in range(3):
        mgr.create("customers", {"name": f"客户{i}", "status": "closed"})
    again = facts.catch_up(engine)
    assert (again.upserted, again.removed, again.rebuilt) == (3, 0, False)
    assert facts.catch_up(engine).upserted == 0
    before = statuses(mgr)
    monkeypatch.setattr(facts, "LAYOUT_ID", "a-new-layout")
    rebuilt = facts.catch_up(engine)
    assert rebuilt.rebuilt and rebuilt.upserted >= 3
    assert statuses(mgr) == before
    assert facts.catch_up(engine).rebuilt is False
