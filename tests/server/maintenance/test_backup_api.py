"""Backup and restore from the admin API: a backup taken while serving, more writes,
then a restore over the live database — the later writes are gone, a new sync epoch
sends every phone back to a full resync, and only admins may do it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.conftest import World, build_world, customer_fields, new_id
from tests.server.manager.conftest import Web


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[World]:
    w, client = build_world(db_url, backup_dir=str(tmp_path / "backups"))
    with client:
        yield w
    w.context.engine.dispose()


def test_backup_then_restore_over_the_live_database(world: World) -> None:
    admin = Web(world, "admin")
    phone = world.phone("rep_a1")
    before = new_id("c")
    phone.push_one("customers", before, customer_fields())
    phone.sync_down()

    made = admin.post("/v1/admin/backups")
    assert made.status_code == 201, made.text
    name = made.json()["name"]
    assert made.json()["bytes"] > 0
    assert [b["name"] for b in admin.get("/v1/admin/backups").json()["items"]] == [name]

    after = new_id("c")
    phone.push_one("customers", after, customer_fields())
    phone.sync_down()
    old_checkpoint = phone.checkpoint

    assert (
        Web(world, "mgr_a")
        .post(f"/v1/admin/backups/{name}/restore", json={"confirm": name})
        .status_code
        == 403
    )
    assert (
        admin.post(f"/v1/admin/backups/{name}/restore", json={"confirm": "no"}).status_code == 403
    )
    assert (
        admin.post(
            "/v1/admin/backups/fieldsync-20000101T000000Z.sqlite/restore",
            json={"confirm": "fieldsync-20000101T000000Z.sqlite"},
        ).status_code
        == 404
    )

    # Sessions issued after the backup are gone with it: sign in again.
    admin = Web(world, "admin")
    restored = admin.post(f"/v1/admin/backups/{name}/restore", json={"confirm": name})
    assert restored.status_code == 200, restored.text
    assert restored.json()["epoch"] != "0"

    phone.login()
    refused = phone.pull_raw(old_checkpoint)
    assert refused.status_code == 410
    assert refused.json()["error"]["details"]["reason"] == "epoch_changed"
    phone.checkpoint = None
    phone.records.clear()
    phone.sync_down()
    held = {rid for (collection, rid) in phone.records if collection == "customers"}
    assert before in held and after not in held
    assert world.client.get("/readyz").json()["status"] == "ready"
