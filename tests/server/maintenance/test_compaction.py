"""Compaction's parts: what each retention window removes, the run inside a real server
on its schedule (metrics, audit), ``fieldsync maintain``, and one run at a time on
PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from server.db import make_engine
from server.maintenance.compaction import (
    ADVISORY_KEY,
    DAY_MS,
    RetentionPolicy,
    compact,
    compact_exclusively,
    history_size,
)
from tests.server.conftest import World, customer_fields, new_id
from tests.support.server_proc import REPO_ROOT, ServerProcess


def _age(world: World, table: str, column: str, days: int) -> None:
    with world.context.engine.begin() as conn:
        conn.execute(text(f"UPDATE {table} SET {column} = {column} - :d"), {"d": days * DAY_MS})


def test_each_window_removes_only_what_is_older(world: World) -> None:
    phone = world.phone("rep_a1")
    doomed, kept = new_id("c"), new_id("c")
    phone.push_one("customers", doomed, customer_fields())
    phone.push_one("customers", kept, customer_fields())
    phone.push_one("customers", doomed, op="delete", base_version=None)
    phone.sync_down()
    checkpoint = phone.checkpoint
    _age(world, "records", "updated_at_ms", 40)  # the delete is 40 days old
    _age(world, "applied_mutations", "created_at_ms", 20)
    _age(world, "audit_log", "at_ms", 400)
    now = int(time.time() * 1000)
    engine = world.context.engine

    nothing = compact(engine, RetentionPolicy(60, 30, 0), now_ms=now)
    assert (nothing.tombstones, nothing.idempotency, nothing.audit) == (0, 0, 0)

    done = compact(engine, RetentionPolicy(30, 10, 365), now_ms=now)
    assert (done.tombstones, done.idempotency) == (1, 3)
    assert done.audit >= 3  # the old entries, not the compaction's own
    with engine.connect() as conn:
        size = history_size(conn)
        actions = conn.execute(text("SELECT action FROM audit_log")).scalars().all()
    assert (size.tombstones, size.idempotency) == (0, 0)
    assert actions.count("admin.compaction") == 2

    # The device that had synced past the delete keeps syncing incrementally; a device
    # from before it would resync (tested with many devices in test_compaction_history).
    assert phone.pull_raw(checkpoint).status_code == 200
    assert phone.pull_raw("v1:1").json()["error"]["details"]["reason"] == "purged"


@pytest.mark.postgres
def test_one_compaction_at_a_time_on_postgres(postgres_url: str) -> None:
    from server.migrate import upgrade

    upgrade(postgres_url)
    engine = make_engine(postgres_url)
    try:
        with engine.connect() as other:  # another instance is compacting
            assert other.execute(
                text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_KEY}
            ).scalar()
            skipped = compact_exclusively(
                engine, RetentionPolicy(1, 1, 1), now_ms=int(time.time() * 1000)
            )
            assert skipped.skipped
            other.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_KEY})
            other.commit()
        ran = compact_exclusively(engine, RetentionPolicy(1, 1, 1), now_ms=int(time.time() * 1000))
        assert not ran.skipped
    finally:
        engine.dispose()


def _metric(body: str, name: str) -> float:
    total = 0.0
    for line in body.splitlines():
        if line.startswith(name):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_the_server_compacts_on_its_schedule_and_maintain_runs_once(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'fieldsync.db'}"
    env = {"FIELDSYNC_COMPACTION_INTERVAL_S": "0.3"}
    with ServerProcess(url, env=env, seed_demo=True, demo_customers=3) as server:
        deadline = time.monotonic() + 20
        runs = 0.0
        while time.monotonic() < deadline and runs < 1:
            time.sleep(0.3)
            body = httpx.get(f"{server.url}/metrics").text
            runs = _metric(body, 'fieldsync_compaction_runs_total{result="ok"}')
        assert runs >= 1
        assert _metric(body, "fieldsync_compaction_last_success_timestamp_seconds") > 0
        done = subprocess.run(
            [sys.executable, "-m", "server", "maintain", "--json", "--database-url", url],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["skipped"] is False and summary["live_rows"] > 0
    assert summary["history_ratio"] >= 1.0


def test_a_paged_initial_sync_after_a_purge_is_not_sent_back(world: World) -> None:
    """Its own page checkpoints are below the purge horizon, yet were issued after it."""
    writer = world.phone("rep_a1")
    rids = [new_id("c") for _ in range(4)]
    for rid in rids:
        writer.push_one("customers", rid, customer_fields())
    writer.push_one("customers", rids[-1], op="delete")
    old = writer.pull_raw(None, limit=1).json()["checkpoint"]
    later = int(time.time() * 1000) + 91 * DAY_MS
    assert compact(world.context.engine, RetentionPolicy(90, 90, 0), now_ms=later).tombstones == 1
    fresh = world.phone("rep_a1")
    changes = fresh.sync_down(limit=1)  # one change per page: every checkpoint < horizon
    assert {c["record_id"] for c in changes} == set(rids[:-1])
    assert writer.pull_raw(old).json()["error"]["details"]["reason"] == "purged"
