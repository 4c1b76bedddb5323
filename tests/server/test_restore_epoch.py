"""A checkpoint the server cannot serve exactly is never answered with a silent empty
page (issue 12, defect 9): after a restore (a new epoch) or any counter regression,
every device gets ``resync_required`` and a fresh sync brings it back in step."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from server.cli import main as cli_main
from server.manager.backup import backup, restore
from server.repository.pull import format_checkpoint
from tests.server.conftest import World, build_world, customer_fields, new_id


def _resync_reason(response: object) -> str:
    assert getattr(response, "status_code", None) == 410, getattr(response, "text", "")
    error = response.json()["error"]  # type: ignore[attr-defined]
    assert error["code"] == "resync_required"
    return str(error["details"]["reason"])


def test_a_checkpoint_ahead_of_the_counter_must_resync(sqlite_world: World) -> None:
    phone = sqlite_world.phone("rep_a1")
    for _ in range(3):
        phone.push_one("customers", new_id("c"), customer_fields())
    phone.sync_down()
    assert phone.checkpoint == format_checkpoint(3)
    with sqlite_world.context.sessions() as s:  # the counter goes back (a hand restore)
        s.execute(text("UPDATE sync_state SET counter = 1"))
        s.commit()
    assert _resync_reason(phone.pull_raw(phone.checkpoint)) == "checkpoint_ahead"
    assert phone.pull_raw(None).status_code == 200


def test_old_v1_checkpoints_stay_valid_until_a_restore(sqlite_world: World) -> None:
    phone = sqlite_world.phone("rep_a1")
    phone.push_one("customers", new_id("c"), customer_fields())
    assert phone.pull_raw("v1:0").json()["checkpoint"] == "v1:1"
    for bad in ("v1:" + "9" * 4300, "v1:-1", "v2::1", "v3:1", "v1:1 ", "v2:0:" + "1" * 19):
        refused = phone.pull_raw(bad)
        assert refused.status_code == 422, bad
        assert refused.json()["error"]["details"]["fields"][0]["field"] == "checkpoint"


def test_restore_makes_every_device_resync(world: World, tmp_path: Path) -> None:
    phone = world.phone("rep_a1")
    phone.push_one("customers", "c-before", customer_fields("备份前"))
    phone.sync_down()
    saved = backup(world.db_url, tmp_path / "fieldsync.backup")
    after = phone.push_one("customers", "c-after", customer_fields("备份后"))
    phone.sync_down()
    assert after["version"] == 2
    # This process stands still for the restore (requests 503, background tasks held),
    # as in the admin API's restore: a search catch-up or compaction run meeting
    # `pg_restore --clean` deadlocks with it.
    with world.context.ops.restore_gate:
        world.context.engine.dispose()
        restore(world.db_url, saved.path, force=True)
    # Other devices push again after the restore: version 2 now means another change,
    # so the phone's checkpoint (at 2) would skip it without the epoch.
    other = world.phone("rep_a1")
    other.push_one("customers", "c-other", customer_fields("恢复后"))
    assert _resync_reason(phone.pull_raw(phone.checkpoint)) == "epoch_changed"
    phone.checkpoint, phone.records = None, {}
    phone.sync_down()
    assert {rid for _, rid in phone.records} == {"c-before", "c-other"}
    assert phone.checkpoint is not None and phone.checkpoint.startswith("v2:")
    assert phone.pull_raw(phone.checkpoint).status_code == 200


def test_the_new_epoch_command(sqlite_url: str) -> None:
    world, client = build_world(sqlite_url)
    with client:
        phone = world.phone("rep_a1")
        phone.push_one("customers", new_id("c"), customer_fields())
        phone.sync_down()
        assert cli_main(["db", "new-epoch", "--database-url", sqlite_url]) == 0
        assert _resync_reason(phone.pull_raw(phone.checkpoint)) == "epoch_changed"
    world.context.engine.dispose()
