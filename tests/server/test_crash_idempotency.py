"""SIGKILL the real server at chosen points of a push, and retry: every mutation is
applied exactly once.

The kills come from fault-injection points in the server process
(:mod:`tests.support.fault_server`), not from a timer, so each run crashes at the same
places (issue 12, defect 12: a timer caught a broken ledger in 1 run of 3):

* **before commit** — the batch's rows are written, the counter is locked, nothing is
  committed: after the crash none of the batch is on the server, and the retry applies
  it (status ``applied``);
* **after commit** — the batch committed but its answer never left: the retry must find
  every mutation in the ledger and answer ``duplicate`` with the original version —
  applying it again would add versions, audit rows and a second edit.

Each server life runs with the next point armed; the test checks the database after
every crash, then the whole ledger at the end.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from server.db import is_sqlite, make_engine, make_session_factory
from server.models import AppliedMutation, AuditEntry, Record
from server.repository import read_counter
from sync_protocol import HybridLogicalClock
from tests.support.fault_server import ENV
from tests.support.server_proc import ServerProcess, create_user_direct, migrate

BATCHES = 4
BATCH_SIZE = 40
#: One armed point per server life: (point, the n-th push of that life it kills). A
#: life's first push is the retry of the batch the previous life died on, so every kill
#: below lands on a batch the server has not seen yet.
LIVES = [
    ("push.before_commit", 2),  # batch 1
    ("push.after_commit", 2),  # batch 2 (the retry of batch 1 is push 1)
    (None, 0),
]


def _batches(clock: HybridLogicalClock) -> list[list[dict[str, Any]]]:
    batches: list[list[dict[str, Any]]] = []
    for b in range(BATCHES):
        batch = [
            {
                "id": f"m-{b}-{k}",
                "collection": "customers",
                "record_id": f"c-{b}-{k}",
                "op": "upsert",
                "fields": {"name": f"客户{b}-{k}", "status": "potential"},
                "hlc": clock.now().encode(),
            }
            for k in range(BATCH_SIZE)
        ]
        # Every batch also edits a record of the previous batch: a double application
        # would show as an extra version.
        if b:
            batch.append(
                {
                    "id": f"m-{b}-edit",
                    "collection": "customers",
                    "record_id": f"c-{b - 1}-0",
                    "op": "upsert",
                    "base_version": None,
                    "fields": {"tier": ["high", "mid", "low"][b % 3]},
                    "hlc": clock.now().encode(),
                }
            )
        batches.append(batch)
    return batches


def _server_state(db_url: str) -> tuple[dict[str, str], dict[str, int], dict[str, int], int]:
    engine = make_engine(db_url)
    try:
        with make_session_factory(engine)() as s:
            applied = dict(
                s.execute(select(AppliedMutation.mutation_id, AppliedMutation.result)).all()
            )
            audited = dict(
                s.execute(
                    select(AuditEntry.details, func.count())
                    .where(AuditEntry.action.like("mutation.%"))
                    .group_by(AuditEntry.details)
                ).all()
            )
            records = dict(s.execute(select(Record.record_id, Record.version)).all())
            counter = read_counter(s.connection()).counter
    finally:
        engine.dispose()
    return applied, audited, records, counter


@pytest.mark.e2e
def test_kills_before_and_after_commit_apply_every_mutation_exactly_once(db_url: str) -> None:
    migrate(db_url)
    create_user_direct(db_url, "rep", "rep-password-1", user_id="u-rep")
    lives = iter(LIVES)
    point, nth = next(lives)
    server = ServerProcess(
        db_url,
        migrate=False,
        module="tests.support.fault_server",
        env={ENV: f"{point}={nth}"},
    )
    server.start()
    batches = _batches(HybridLogicalClock("crash-dev"))
    token = ""
    final: dict[str, dict[str, Any]] = {}
    crashes: list[str] = []
    try:
        for b, batch in enumerate(batches):
            retried_after: str | None = None
            while True:
                try:
                    if not token:
                        token = server.login("rep", "rep-password-1", "crash-dev")["access_token"]
                    r = httpx.post(
                        f"{server.url}/v1/sync/push",
                        json={"device_id": "crash-dev", "schema_version": 1, "mutations": batch},
                        headers={"Authorization": f"Bearer {token}"},
                        timeout=60,
                    )
                except httpx.HTTPError:
                    # The armed point was reached: the process killed itself.
                    assert server.process is not None
                    server.process.wait(30)
                    server.kill()  # reap
                    assert point is not None, "the server died with no fault armed"
                    ids = {m["id"] for m in batch}
                    applied, _, _, _ = _server_state(db_url)
                    if point == "push.before_commit":
                        assert not ids & set(applied), f"uncommitted batch {b} left rows"
                    else:
                        assert ids <= set(applied), f"committed batch {b} is missing"
                    crashes.append(point)
                    retried_after = point
                    point, nth = next(lives)
                    server.extra_env[ENV] = f"{point}={nth}" if point else ""
                    server.start()
                    continue
                assert r.status_code == 200, r.text
                results = r.json()["results"]
                statuses = {x["status"] for x in results}
                if retried_after == "push.after_commit":
                    assert statuses == {"duplicate"}, f"batch {b} applied twice: {statuses}"
                else:
                    assert statuses == {"applied"}, f"batch {b}: {statuses}"
                for result in results:
                    final.setdefault(result["mutation_id"], result)
                break
    finally:
        server.stop()

    assert crashes == [p for p, _ in LIVES if p is not None], crashes
    total = sum(len(b) for b in batches)
    assert len(final) == total
    applied, audited, records, counter = _server_state(db_url)
    assert set(applied) == set(final)
    # One audit row per mutation: none was applied twice.
    assert all(n == 1 for n in audited.values()) and len(audited) == total
    assert len(records) == BATCHES * BATCH_SIZE
    # Exactly one version per creation and per edit: no double application anywhere.
    versions = [int(r["version"]) for r in final.values()]
    assert len(set(versions)) == total
    if is_sqlite(db_url):
        assert counter == total  # SQLite counts versions without gaps
    else:
        # PostgreSQL's version sequence leaves gaps (aborted transactions, unused rests
        # of a batch's block), never repeats.
        assert counter >= max(versions)
    for mutation_id, result in final.items():
        assert result["version"] == json.loads(applied[mutation_id])["version"]
