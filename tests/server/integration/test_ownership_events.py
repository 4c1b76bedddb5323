"""Ownership moves reach webhooks: a reassignment, a team move and a merge's re-pointing
each announce ``record.changed`` for every record they gave a new version — heard by a
webhook scoped to the team that now sees them (a real receiver on loopback), on SQLite
and PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any

from tests.server.conftest import World, customer_fields, new_id, password_of
from tests.server.integration.conftest import Receiver, wait_for
from tests.server.manager.conftest import Web


def _changes(receiver: Receiver, path: str, record_id: str) -> list[dict[str, Any]]:
    """The ``record.changed`` data the receiver got at ``path`` for ``record_id``."""
    return [
        r.event["data"]
        for r in receiver.events(path)
        if r.event["type"] == "record.changed" and r.event["data"]["record_id"] == record_id
    ]


def test_reassignment_team_move_and_merge_announce_record_changed(
    world: World, receiver: Receiver
) -> None:
    admin = Web(world, "admin")
    receiver.start()
    path = f"/team-b-{uuid.uuid4().hex[:6]}"
    hook = admin.post(
        "/v1/integration/webhooks",
        json={
            "name": "team B's ERP",
            "url": receiver.url(path),
            "events": ["record.changed"],
            "scope_user_id": world.users["mgr_b"],
        },
    )
    assert hook.status_code == 201, hook.text
    a1 = world.phone("rep_a1")

    # 1. reassignment: team A's customer (and its contact) moves to team B's rep
    moved, contact = new_id("c"), new_id("p")
    a1.push_one("customers", moved, customer_fields("转给乙队"))
    a1.push_one("contacts", contact, {"customer_id": moved, "name": "联系人甲"})
    done = admin.post(
        "/v1/manager/customers/reassign",
        json={"customer_ids": [moved], "new_owner_id": world.users["rep_b1"]},
    )
    assert done.status_code == 200, done.text
    got = wait_for(lambda: _changes(receiver, path, moved), message="reassigned customer")
    assert got[-1]["owner_id"] == world.users["rep_b1"]
    assert got[-1]["fields"]["owner_id"] == world.users["rep_b1"]
    assert got[-1]["fields"]["name"] == "转给乙队"
    wait_for(lambda: _changes(receiver, path, contact), message="its contact")

    # 2. team move: a new rep of team A, with a customer, joins team B
    name = f"rep_{uuid.uuid4().hex[:6]}"
    made = admin.post(
        "/v1/manager/users",
        json={"username": name, "password": password_of(name), "team_id": "team-a"},
    )
    assert made.status_code == 201, made.text
    mover = world.phone(name)
    theirs = new_id("c")
    mover.push_one("customers", theirs, customer_fields("随人走"))
    team_move = admin.patch(f"/v1/manager/users/{made.json()['id']}", json={"team_id": "team-b"})
    assert team_move.status_code == 200, team_move.text
    got = wait_for(lambda: _changes(receiver, path, theirs), message="team move")
    assert got[-1]["owner_id"] == made.json()["id"] and got[-1]["fields"]["name"] == "随人走"

    # 3. merge: team A's customer merged into team B's — the loser moves, its child is
    #    re-pointed, the loser is deleted; team B hears all of it
    survivor, loser, child = new_id("c"), new_id("c"), new_id("p")
    world.phone("rep_b1").push_one("customers", survivor, customer_fields("留下的"))
    a1.push_one("customers", loser, customer_fields("并掉的"))
    a1.push_one("contacts", child, {"customer_id": loser, "name": "联系人乙"})
    merged = admin.post(
        "/v1/manager/customers/merge", json={"survivor_id": survivor, "loser_id": loser}
    )
    assert merged.status_code == 200, merged.text
    wait_for(
        lambda: any(
            c["fields"].get("customer_id") == survivor for c in _changes(receiver, path, child)
        ),
        message="re-pointed child",
    )
    wait_for(
        lambda: any(c["deleted"] for c in _changes(receiver, path, loser)), message="loser gone"
    )
    admin.delete(f"/v1/integration/webhooks/{hook.json()['id']}")
