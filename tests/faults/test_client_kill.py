"""The client process is killed (SIGKILL) while it applies pulled pages of a large
initial sync, five times at random points; every time the store must reopen with a
checkpoint that matches its data, and the last run must finish with every record."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from client_sdk import FAST_KDF, Store
from sync_protocol import CRM_SCHEMA
from tests.support.server_proc import REPO_ROOT, ServerProcess
from tests.support.simulator import SERVER_ENV

from .conftest import REP1, assert_matches_checkpoint, visible_to
from .sync_child import PASSPHRASE

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _held(store: Store) -> dict[tuple[str, str], tuple[int | None, dict[str, object]]]:
    out = {}
    for name in [*CRM_SCHEMA.entities, "_conflicts"]:
        for rid, rec in store._core.views.cache(name).records.items():
            out[(name, rid)] = (rec.version, rec.fields)
    return out


def _assert_consistent(store: Store, db_url: str) -> int:
    assert store.status().pending_total == 0
    return assert_matches_checkpoint(store, db_url)


def test_client_killed_while_applying_pulled_pages(sqlite_url: str, tmp_path: Path) -> None:
    rng = random.Random(20261123)
    path = tmp_path / "device.db"
    with ServerProcess(sqlite_url, env=SERVER_ENV, seed_demo=True, demo_customers=500) as server:
        total = len(visible_to(sqlite_url, REP1))
        checkpoints = []
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        for _ in range(5):
            child = subprocess.Popen(
                [sys.executable, "-m", "tests.faults.sync_child", str(path), server.url],
                cwd=REPO_ROOT,
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert child.stdout is not None
            target = rng.randint(1, 4)
            pages = 0
            for line in child.stdout:
                if line.startswith("page"):
                    pages += 1
                    if pages >= target:
                        break
                if line.startswith("done"):
                    break
            # Kill while the next page is being fetched or applied.
            time.sleep(rng.uniform(0.0, 0.05))
            child.send_signal(signal.SIGKILL)
            child.wait()
            child.stdout.close()

            store = Store.open(path, PASSPHRASE, schema=CRM_SCHEMA, kdf=FAST_KDF)
            try:
                checkpoints.append(_assert_consistent(store, sqlite_url))
            finally:
                store.close()

        assert checkpoints == sorted(checkpoints), "a checkpoint went backwards"
        assert checkpoints[-1] > 0, "no page was ever committed before a kill"

        finish = subprocess.run(
            [sys.executable, "-m", "tests.faults.sync_child", str(path), server.url],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert "done" in finish.stdout, finish.stderr[-2000:]
        store = Store.open(path, PASSPHRASE, schema=CRM_SCHEMA, kdf=FAST_KDF)
        try:
            _assert_consistent(store, sqlite_url)
            held = _held(store)
            assert len(held) == total
            assert {k: f for k, (_, f) in held.items()} == visible_to(sqlite_url, REP1)
        finally:
            store.close()
