"""The server's hybrid logical clock must not go backwards across a restart.

Found by the convergence simulator (long configuration, real server SIGKILLed and
restarted): a device whose clock runs a few minutes fast (inside ``max_drift_ms``, so
not clamped) writes a field; the server restarts; its fresh in-memory HLC starts at the
wall clock, *below* the HLC it has stored. A device that pulls the value now receives a
``server_hlc`` smaller than the value's clock, and its causally later edit carries a
smaller HLC than the write it overwrites. The merge still lets that edit win (it is
non-concurrent by ``base_version``), but any *concurrent* write is then ordered against
a clock that lies about causality, and "greater HLC wins" no longer means "later".
The same holds between the processes of ``serve --workers 2``: each has its own clock.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from sync_protocol import Timestamp
from tests.support.server_proc import ServerProcess
from tests.support.simulator import SERVER_ENV

pytestmark = [pytest.mark.e2e]


def test_server_hlc_never_goes_below_a_stored_hlc_after_restart(sqlite_url: str) -> None:
    with ServerProcess(sqlite_url, env=SERVER_ENV, seed_demo=True, demo_customers=0) as server:
        token = server.login("rep1", device_id="dev-fastclock")["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        ahead = Timestamp(int(time.time() * 1000) + 4 * 60 * 1000, 0, "dev-fastclock").encode()
        push = {
            "protocol": 1,
            "device_id": "dev-fastclock",
            "schema_version": 1,
            "mutations": [
                {
                    "id": "mut-fast-1",
                    "collection": "customers",
                    "record_id": "cust-fast-1",
                    "op": "upsert",
                    "fields": {"name": "fast clock", "status": "potential"},
                    "hlc": ahead,
                }
            ],
        }
        answer = httpx.post(f"{server.url}/v1/sync/push", json=push, headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.json()["results"][0]["status"] == "applied"
        assert not answer.json()["warnings"], "4 minutes ahead should not be clamped"

        server.restart(kill=True)
        pull = {"protocol": 1, "device_id": "dev-fastclock", "schema_version": 1, "limit": 10}
        page = httpx.post(f"{server.url}/v1/sync/pull", json=pull, headers=headers).json()
        assert page["server_hlc"] >= ahead, (
            f"server_hlc {page['server_hlc']} is below the stored HLC {ahead}"
        )


def test_clamping_a_fast_clock_keeps_the_order_of_its_writes(
    sqlite_url: str, tmp_path: Path
) -> None:
    """A phone three days ahead edits a record twice in one push; the first edit shares
    its millisecond with another write (HLC counter 1), the second comes a second later
    (counter 0). Clamped to ``now + max_drift`` the two must keep their order — a clamp
    that kept the counters made the later edit look older and dropped it."""
    from client_sdk import FAST_KDF, HttpTransport, ManualClock, Store, SyncClient, SyncConfig
    from sync_protocol import CRM_SCHEMA

    with ServerProcess(sqlite_url, env=SERVER_ENV, seed_demo=True, demo_customers=0) as server:
        clock = ManualClock(time.time() + 3 * 86_400)  # the phone is three days ahead
        store = Store.open(tmp_path / "fast.db", "pw", schema=CRM_SCHEMA, kdf=FAST_KDF, clock=clock)
        client = SyncClient(store, HttpTransport(server.url), SyncConfig(max_attempts=1))
        client.login("rep1", "fieldsync-demo", device_name="fast phone")
        customers = store.collection("customers")
        other = customers.insert({"name": "other", "status": "potential"})
        # Same millisecond: this write gets HLC counter 1.
        target = customers.insert({"name": "target", "status": "potential", "city": "first"})
        customers.update(other.id, {"city": "between"})  # keeps the two edits apart
        clock.advance(1.0)  # a second later: counter back to 0
        customers.update(target.id, {"city": "second"})
        client.sync()
        assert customers.get(target.id)["city"] == "second", "the later edit was lost"
        store.close()
