"""Scope declared in a developer's schema file, enforced by the server like the CRM's.

``tests/support/schemas/field_service.toml`` has one collection of each scope: sites
(owner), visits (parent: sites), findings (parent: visits — a chain), handbook (team)
and boiler_models (reference, written by managers). Expectations come from the rules
of docs/sdk.md ("Who sees what"), not from the code: an owner's records go to the owner,
their team's manager and admins; a parent's children follow the parent; team records go
to the writer's team; reference records to everyone.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from server.models import Record
from tests.server.conftest import Phone, World, build_world, new_id

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "support" / "schemas" / "field_service.toml"


@pytest.fixture
def world(db_url: str) -> Iterator[World]:
    w, client = build_world(db_url, schema_source=str(SCHEMA_FILE))
    with client:
        yield w
    w.context.engine.dispose()


def _seen(phone: Phone) -> set[str]:
    phone.sync_down()
    return {record_id for (_collection, record_id) in phone.records}


def _status(result: dict[str, object]) -> str:
    error = result.get("error")
    return str(error["code"]) if isinstance(error, dict) else str(result["status"])


def test_each_declared_scope_reaches_exactly_its_readers(world: World) -> None:
    rep = world.phone("rep_a1")
    site, visit, finding, page, model = (new_id(p) for p in "svfhb")
    assert _status(rep.push_one("sites", site, {"name": "Boiler room"})) == "applied"
    assert _status(rep.push_one("visits", visit, {"site_id": site, "summary": "ok"})) == "applied"
    assert (
        _status(rep.push_one("findings", finding, {"visit_id": visit, "severity": "low"}))
        == "applied"
    )
    assert _status(rep.push_one("handbook", page, {"title": "Gas safety"})) == "applied"
    assert _status(world.phone("mgr_a").push_one("boiler_models", model, {"model": "X"})) == (
        "applied"
    )
    own = {site, visit, finding}
    everyone = {model}
    team_a = {page}
    assert _seen(rep) == own | team_a | everyone
    assert _seen(world.phone("rep_a2")) == team_a | everyone  # same team, not the owner
    assert _seen(world.phone("mgr_a")) == own | team_a | everyone
    assert _seen(world.phone("rep_b1")) == everyone
    assert _seen(world.phone("mgr_b")) == everyone
    assert _seen(world.phone("admin")) == own | team_a | everyone

    # the placement columns the pull's index scans use
    with world.context.engine.connect() as conn:
        rows = {
            r.record_id: (r.owner_id, r.customer_id)
            for r in conn.execute(select(Record.record_id, Record.owner_id, Record.customer_id))
        }
    assert rows[site] == ("u-rep_a1", site)  # a parent: the root of its chain
    assert rows[visit] == ("u-rep_a1", site)
    assert rows[finding] == ("u-rep_a1", site)  # two levels down: still the root
    assert rows[page] == ("team:team-a", None)
    assert rows[model] == (None, None)
    assert rep.records[("sites", site)]["owner_id"] == "u-rep_a1"  # filled in by the server


def test_writes_outside_the_declared_scope_are_refused_and_change_nothing(world: World) -> None:
    owner = world.phone("rep_a1")
    site, visit, page = new_id("s"), new_id("v"), new_id("h")
    owner.push_one("sites", site, {"name": "Boiler room"})
    owner.push_one("visits", visit, {"site_id": site})
    owner.push_one("handbook", page, {"title": "Gas safety"})
    teammate, stranger = world.phone("rep_a2"), world.phone("rep_b1")

    assert _status(teammate.push_one("sites", site, {"name": "taken"}, base_version=1)) == (
        "forbidden"
    )
    refused = teammate.push_one("visits", new_id("v"), {"site_id": site})
    assert _status(refused) == "forbidden"
    assert refused["error"]["details"] == {"site_id": site}  # type: ignore[index]
    assert (
        _status(stranger.push_one("findings", new_id("f"), {"visit_id": visit, "severity": "low"}))
        == "forbidden"
    )
    assert _status(stranger.push_one("handbook", page, {"title": "mine"}, base_version=1)) == (
        "forbidden"
    )
    assert _status(stranger.push_one("handbook", page, op="delete")) == "forbidden"
    assert _status(owner.push_one("boiler_models", new_id("b"), {"model": "Y"})) == "forbidden"
    # team-wide means the whole team may edit
    assert _status(teammate.push_one("handbook", page, {"title": "Gas safety v2"})) == "applied"
    # an admin belongs to no team: no team-wide record can be theirs
    assert (
        "team"
        in world.phone("admin").push_one("handbook", new_id("h"), {"title": "x"})["error"][
            "message"
        ]
    )  # type: ignore[index]

    mine = world.phone("rep_a1")
    mine.sync_down()
    assert mine.records[("sites", site)]["name"] == "Boiler room"
    assert mine.records[("handbook", page)]["title"] == "Gas safety v2"
    assert {c for (c, _r) in mine.records} == {"sites", "visits", "handbook"}


def test_the_server_serves_the_declared_schema_not_the_crm(world: World) -> None:
    described = world.client.get("/v1/sync/schema").json()
    assert described["name"] == "field_service"
    assert set(described["entities"]) == {
        "sites",
        "visits",
        "findings",
        "handbook",
        "boiler_models",
    }
    assert described["entities"]["findings"]["parent"] == "visits"
    result = world.phone("rep_a1").push_one("customers", new_id("c"), {"name": "x"})
    assert _status(result) == "unknown_collection"


def test_reassigning_a_declared_owner_moves_its_chain_with_evictions(world: World) -> None:
    rep_a1, rep_a2 = world.phone("rep_a1"), world.phone("rep_a2")
    site, visit, finding, other_site = new_id("s"), new_id("v"), new_id("f"), new_id("s")
    rep_a1.push_one("sites", site, {"name": "Boiler room"})
    rep_a1.push_one("visits", visit, {"site_id": site})
    rep_a1.push_one("findings", finding, {"visit_id": visit, "severity": "high"})
    rep_a1.push_one("sites", other_site, {"name": "Stays with rep_a1"})
    assert _seen(rep_a1) == {site, visit, finding, other_site}
    assert _seen(rep_a2) == set()

    manager = world.phone("mgr_a")
    answer = world.client.post(
        "/v1/admin/records/sites/reassign",
        json={"record_ids": [site], "new_owner_id": world.users["rep_a2"]},
        headers=manager.headers,
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["moved_records"], body["evictions"], body["evicted_users"]) == (
        3,
        3,
        [world.users["rep_a1"]],
    )
    assert _seen(rep_a2) == {site, visit, finding}  # the whole chain arrived
    assert rep_a2.records[("sites", site)]["owner_id"] == world.users["rep_a2"]
    assert _seen(rep_a1) == {other_site}  # and left the old owner's devices (evictions)
    assert _seen(manager) >= {site, visit, finding, other_site}

    # refused: a rep, another team's owner, a collection without owners
    for phone, path, body_ in (
        (rep_a1, "sites", {"record_ids": [other_site], "new_owner_id": world.users["rep_a2"]}),
        (manager, "sites", {"record_ids": [other_site], "new_owner_id": world.users["rep_b1"]}),
        (manager, "handbook", {"record_ids": [site], "new_owner_id": world.users["rep_a2"]}),
    ):
        refused = world.client.post(
            f"/v1/admin/records/{path}/reassign", json=body_, headers=phone.headers
        )
        assert refused.status_code == 403, refused.text
    unknown = world.client.post(
        "/v1/admin/records/sites/reassign",
        json={"record_ids": ["s-nope"], "new_owner_id": world.users["rep_a2"]},
        headers=manager.headers,
    )
    assert unknown.status_code == 404
    assert _seen(rep_a1) == {other_site}  # nothing moved by the refusals
