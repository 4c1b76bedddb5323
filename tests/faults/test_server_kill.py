"""The server is SIGKILLed while a device pushes, and while a device pulls.

The device keeps retrying (the server is restarted on the same database); in the end
every acknowledged write is on the server exactly once — one ``applied_mutations`` row,
one audit row, no duplicated note line — and a second device that pulled through crashes
holds exactly what the server holds.

The kills land at chosen points (:class:`~tests.faults.conftest.KillingTransport` marks
the chosen requests; :mod:`tests.support.fault_server` dies inside them): a push before
its commit, a push after its commit whose answer is lost, a pull before its answer.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.server_proc import ServerProcess
from tests.support.simulator import SERVER_ENV

from .conftest import (
    FAULT_MODULE,
    REP1,
    device_records,
    mutation_ledger,
    open_device,
    server_rows,
    sync_until_done,
    visible_to,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_server_killed_during_push_applies_every_write_exactly_once(
    db_url: str, tmp_path: Path
) -> None:
    with ServerProcess(
        db_url, env=SERVER_ENV, seed_demo=True, demo_customers=0, module=FAULT_MODULE
    ) as server:
        store, client, transport = open_device(tmp_path / "a.db", server.url, push_batch=15)
        customers = store.collection("customers")
        ids = []
        for i in range(240):
            rec = customers.insert({"name": f"客户 {i}", "status": "potential", "notes": f"n{i}"})
            ids.append(rec.id)
        client.push()  # the creates are on the server; the edits below race the kills
        for i, rid in enumerate(ids):
            customers.update(rid, {"notes": f"n{i}\nsecond {i}", "city": f"city {i}"})
            if i % 3 == 0:
                store.collection("activities").insert(
                    {"customer_id": rid, "type": "call", "occurred_at": "2026-11-23T08:00:00Z"}
                )
        pending = store.status().pending_total
        assert pending == 240 + 80

        transport.arm(server, "/v1/sync/push", {2, 6, 11, 17})
        failures = sync_until_done(client, server)
        assert transport.kills == 4
        assert transport.points == ["push.before_commit", "push.after_commit"] * 2
        assert failures >= 4, "an armed push did not crash the server"
        assert store.status().pending_total == 0
        assert store.dead_letters() == []

        rows = server_rows(db_url)
        for i, rid in enumerate(ids):
            fields = rows[("customers", rid)]["fields"]
            assert fields["city"] == f"city {i}"
            assert fields["notes"] == f"n{i}\nsecond {i}", "a note was appended twice or lost"
        activities = [k for k in rows if k[0] == "activities"]
        assert len(activities) == 80

        applied, audit = mutation_ledger(db_url)
        mine = {mid: r for mid, r in applied.items() if r.get("status") != "rejected"}
        assert len(mine) >= 240 + 80
        assert all(n == 1 for n in audit.values()), "a mutation was applied twice"
        assert set(audit) == set(applied)

        # A second device pulls everything and equals the server.
        other, other_client, _ = open_device(tmp_path / "b.db", server.url)
        other_client.sync()
        assert device_records(other) == visible_to(db_url, REP1)
        store.close()
        other.close()


def test_server_killed_during_pull_resumes_and_converges(sqlite_url: str, tmp_path: Path) -> None:
    with ServerProcess(
        sqlite_url, env=SERVER_ENV, seed_demo=True, demo_customers=250, module=FAULT_MODULE
    ) as server:
        store, client, transport = open_device(tmp_path / "b.db", server.url, pull_limit=40)
        transport.arm(server, "/v1/sync/pull", {3, 7, 12})
        failures = sync_until_done(client, server)
        assert transport.kills == 3
        assert failures >= 3, "an armed pull did not crash the server"
        expected = visible_to(sqlite_url, REP1)
        assert len(expected) > 150
        assert device_records(store) == expected
        # Nothing left to pull, and nothing was pulled twice into a wrong state.
        report = client.sync()
        assert report.pulled == 0 or device_records(store) == expected
        store.close()
