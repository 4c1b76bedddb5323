"""SIGKILL the real server process at random points while a client pushes batches and
retries them: afterwards every mutation is applied exactly once."""

from __future__ import annotations

import json
import random
import threading
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from server.db import make_engine, make_session_factory
from server.models import AppliedMutation, AuditEntry, Record
from server.repository import read_counter
from sync_protocol import HybridLogicalClock
from tests.support.server_proc import ServerProcess, create_user_direct, migrate

BATCHES = 10
BATCH_SIZE = 60


@pytest.mark.e2e
def test_sigkill_mid_push_applies_every_mutation_exactly_once(db_url: str) -> None:
    migrate(db_url)
    create_user_direct(db_url, "rep", "rep-password-1", user_id="u-rep")
    server = ServerProcess(db_url, migrate=False)
    server.start()
    rng = random.Random(7)
    clock = HybridLogicalClock("crash-dev")
    stop_killing = threading.Event()
    kills = 0

    def killer() -> None:
        nonlocal kills
        while not stop_killing.is_set() and kills < 2:
            time.sleep(rng.uniform(0.05, 0.4))
            if stop_killing.is_set():
                return
            server.kill()
            kills += 1
            server.start()

    def login() -> str:
        while True:
            try:
                r = httpx.post(
                    f"{server.url}/v1/auth/login",
                    json={
                        "username": "rep",
                        "password": "rep-password-1",
                        "device_id": "crash-dev",
                    },
                    timeout=10,
                )
                if r.status_code == 200:
                    return str(r.json()["access_token"])
            except httpx.HTTPError:
                pass
            time.sleep(0.05)

    batches: list[list[dict[str, Any]]] = []
    for b in range(BATCHES):
        batch = []
        for k in range(BATCH_SIZE):
            rid = f"c-{b}-{k}"
            batch.append(
                {
                    "id": f"m-{b}-{k}",
                    "collection": "customers",
                    "record_id": rid,
                    "op": "upsert",
                    "fields": {"name": f"客户{b}-{k}", "status": "potential"},
                    "hlc": clock.now().encode(),
                }
            )
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

    thread = threading.Thread(target=killer)
    token = login()
    thread.start()
    final: dict[str, dict[str, Any]] = {}
    attempts = 0
    try:
        for batch in batches:
            while True:
                attempts += 1
                try:
                    r = httpx.post(
                        f"{server.url}/v1/sync/push",
                        json={"device_id": "crash-dev", "schema_version": 1, "mutations": batch},
                        headers={"Authorization": f"Bearer {token}"},
                        timeout=10,
                    )
                except httpx.HTTPError:
                    time.sleep(0.05)
                    continue
                if r.status_code == 401:
                    token = login()
                    continue
                if r.status_code == 503:  # database busy right after a restart: retry
                    time.sleep(0.05)
                    continue
                assert r.status_code == 200, r.text
                for result in r.json()["results"]:
                    final[result["mutation_id"]] = result
                break
        stop_killing.set()
        thread.join(30)
    finally:
        stop_killing.set()
        thread.join(30)
        server.stop()

    assert kills >= 1
    total = sum(len(b) for b in batches)
    assert len(final) == total
    assert {r["status"] for r in final.values()} <= {"applied", "duplicate"}
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
    assert set(applied) == set(final)
    # One audit row per mutation: none was applied twice.
    assert all(n == 1 for n in audited.values()) and len(audited) == total
    assert len(records) == BATCHES * BATCH_SIZE
    # Exactly one version per creation and per edit: no double application anywhere.
    assert counter == total
    for mutation_id, result in final.items():
        assert result["version"] == json.loads(applied[mutation_id])["version"]
