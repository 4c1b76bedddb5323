"""Property: whatever two offline devices do, after syncing they agree with the server.

Random interleavings of inserts, field edits, deletes and syncs on two in-memory stores
against the FakeServer (which merges with the real ``merge_record``). After a final
round of syncs every device's views equal the server's records, no write is left
pending, none was refused, and every record created and never deleted exists everywhere.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from client_sdk import FAST_KDF, Store, SyncClient
from client_sdk.testing import FakeServer
from sync_protocol import CRM_SCHEMA

from .conftest import FAST

CITIES = ["北京", "Paris", "Lagos", None]
OPS = st.lists(
    st.tuples(
        st.integers(0, 1),  # device
        st.sampled_from(["insert", "city", "tags", "notes", "delete", "sync"]),
        st.integers(0, 5),  # which record (by index among the device's live ones)
        st.integers(0, 3),  # which value
    ),
    max_size=25,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS)
def test_two_devices_converge_with_the_server(ops: list[tuple[int, str, int, int]]) -> None:
    server = FakeServer()
    stores = [Store.open(None, "pw", schema=CRM_SCHEMA, kdf=FAST_KDF) for _ in range(2)]
    clients = [SyncClient(s, server.transport(), FAST) for s in stores]
    for c in clients:
        c.login("rep1", "fieldsync-demo")
    created: set[str] = set()
    deleted: set[str] = set()
    n = 0
    for device, op, which, value in ops:
        customers = stores[device].collection("customers")
        live = sorted(r.id for r in customers.all())
        if op == "sync":
            clients[device].sync()
        elif op == "insert" or not live:
            n += 1
            rec = customers.insert({"name": f"客户{n}", "status": "potential"})
            created.add(rec.id)
        else:
            target = live[which % len(live)]
            if op == "delete":
                customers.delete(target)
                deleted.add(target)
            else:
                patches: dict[str, dict[str, Any]] = {
                    "city": {"city": CITIES[value]},
                    "tags": {"tags": [f"t{value}", "shared"]},
                    "notes": {"notes": f"visit {value}"},
                }
                patch = patches[op]
                customers.update(target, patch)
    for c in (clients[0], clients[1], clients[0]):
        c.sync()
    expected = {
        rid: row.record.fields
        for (collection, rid), row in server.rows.items()
        if collection == "customers" and not row.record.deleted
    }
    for store in stores:
        status = store.status()
        assert status.pending_total == 0 and status.dead_letters == 0
        views = {r.id: r.fields for r in store.collection("customers").all()}
        assert views == expected
    assert created - deleted <= set(expected)
    for store in stores:
        store.close()
