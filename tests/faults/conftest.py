"""Shared pieces of the fault tests: a real server process, SDK devices, server truth.

Every fault test runs the real server as a child process (``ServerProcess``) so a
``SIGKILL`` is a real crash, and judges the outcome against the server's database read
directly (not through the API under test).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from client_sdk import (
    FAST_KDF,
    HttpTransport,
    Store,
    SyncClient,
    SyncConfig,
    TransportRequest,
    TransportResponse,
)
from client_sdk._local import apply
from sync_protocol import CRM_SCHEMA
from tests.support.fault_server import HEADER
from tests.support.server_proc import ServerProcess
from tests.support.simulator import SERVER_ENV

PASSWORD = "fieldsync-demo"
FAULT_MODULE = "tests.support.fault_server"
REP1 = "u-rep1"


@pytest.fixture
def server(sqlite_url: str) -> Iterator[ServerProcess]:
    with ServerProcess(sqlite_url, env=SERVER_ENV, seed_demo=True, demo_customers=0) as proc:
        yield proc


def open_device(
    path: Path, url: str, *, username: str = "rep1", login: bool = True, **config: Any
) -> tuple[Store, SyncClient, KillingTransport]:
    store = Store.open(path, f"passphrase {path.name}", schema=CRM_SCHEMA, kdf=FAST_KDF)
    transport = KillingTransport(HttpTransport(url, timeout_s=30.0))
    settings = {"max_attempts": 1, "backoff_initial_s": 0.0, "sleep": lambda _s: None}
    settings.update(config)
    client = SyncClient(store, transport, SyncConfig(**settings))
    if login:
        client.login(username, PASSWORD, device_name=path.stem)
    return store, client, transport


class KillingTransport:
    """HTTP transport that makes the server die at a chosen point of chosen requests.

    ``arm(server, path, numbers)``: the n-th request to ``path`` (1-based, for each n in
    ``numbers``) carries ``X-Fieldsync-Test-Fault`` naming a point inside that request —
    for pushes alternately *before its commit* and *after its commit, before the answer*
    (the answer is lost), for pulls *before the answer* — and the server, run by
    :mod:`tests.support.fault_server`, SIGKILLs itself exactly there. No timers: every
    run crashes at the same places (``arm`` restarts a plain server under the fault
    module once).
    """

    POINTS = {
        "/v1/sync/push": ("push.before_commit", "push.after_commit"),
        "/v1/sync/pull": ("pull.before_answer",),
    }

    def __init__(self, inner: HttpTransport) -> None:
        self.inner = inner
        self.server: ServerProcess | None = None
        self.path = ""
        self.numbers: set[int] = set()
        self.seen = 0
        self.kills = 0
        #: The point each armed request was sent to die at, in order.
        self.points: list[str] = []

    def arm(self, server: ServerProcess, path: str, numbers: set[int]) -> None:
        if server.module != FAULT_MODULE:
            server.module = FAULT_MODULE
            server.restart()
        self.server, self.path, self.numbers, self.seen = server, path, set(numbers), 0

    def send(self, request: TransportRequest) -> TransportResponse:
        if self.server is not None and request.path == self.path:
            self.seen += 1
            if self.seen in self.numbers:
                points = self.POINTS[self.path]
                point = points[self.kills % len(points)]
                self.kills += 1
                self.points.append(point)
                request = replace(request, headers={**request.headers, HEADER: point})
        return self.inner.send(request)

    def close(self) -> None:
        self.inner.close()


def sync_until_done(client: SyncClient, server: ServerProcess, attempts: int = 40) -> int:
    """Sync until one whole sync succeeds, restarting the server whenever it is down."""
    failures = 0
    for _ in range(attempts):
        if not server.running:
            server.start()
        try:
            client.sync()
            return failures
        except Exception:
            failures += 1
    raise AssertionError("the device never completed a sync")


def server_rows(db_url: str) -> dict[tuple[str, str], dict[str, Any]]:
    """Every record on the server: (collection, id) -> {owner, deleted, version, fields}."""
    from sqlalchemy import text

    from server.db import make_engine

    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return {
                (r.collection, r.record_id): {
                    "owner_id": r.owner_id,
                    "deleted": bool(r.deleted),
                    "version": int(r.version),
                    "fields": json.loads(r.data),
                }
                for r in conn.execute(
                    text(
                        "SELECT collection, record_id, owner_id, deleted, version, data FROM records"
                    )
                )
            }
    finally:
        engine.dispose()


def mutation_ledger(db_url: str) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
    """applied_mutations (id -> result) and audit rows per mutation id."""
    from sqlalchemy import text

    from server.db import make_engine

    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            applied = {
                r.mutation_id: json.loads(r.result)
                for r in conn.execute(text("SELECT mutation_id, result FROM applied_mutations"))
            }
            audit: dict[str, int] = {}
            for (details,) in conn.execute(
                text("SELECT details FROM audit_log WHERE action LIKE 'mutation.%'")
            ):
                mid = json.loads(details)["mutation_id"]
                audit[mid] = audit.get(mid, 0) + 1
            return applied, audit
    finally:
        engine.dispose()


def visible_to(db_url: str, user_id: str) -> dict[tuple[str, str], dict[str, Any]]:
    """The live records a rep sees (own records and reference data), with their fields."""
    return {
        key: row["fields"]
        for key, row in server_rows(db_url).items()
        if not row["deleted"] and row["owner_id"] in (None, user_id)
    }


def device_records(store: Store) -> dict[tuple[str, str], dict[str, Any]]:
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for name in [*CRM_SCHEMA.entities, "_conflicts"]:
        for rid, rec in store._core.views.cache(name).records.items():
            out[(name, rid)] = rec.fields
    return out


def assert_matches_checkpoint(store: Store, db_url: str, user_id: str = REP1) -> int:
    """The store holds exactly the server's records up to its checkpoint, nothing beyond.

    Holds when the server did not change during the pull (the fault tests' setting):
    pages are applied atomically with their checkpoint.
    """
    raw = apply.checkpoint(store._core.local)
    checkpoint = int(raw.split(":", 1)[1]) if raw else 0
    held = {}
    for name in [*CRM_SCHEMA.entities, "_conflicts"]:
        for rid, rec in store._core.views.cache(name).records.items():
            held[(name, rid)] = (rec.version, rec.fields)
    expected = {
        key: (row["version"], row["fields"])
        for key, row in server_rows(db_url).items()
        if not row["deleted"]
        and row["owner_id"] in (None, user_id)
        and row["version"] <= checkpoint
    }
    beyond = [k for k, (v, _) in held.items() if v is None or v > checkpoint]
    assert not beyond, f"records past the checkpoint {checkpoint}: {beyond[:5]}"
    assert held == expected, "the store's data does not match its checkpoint"
    return checkpoint
