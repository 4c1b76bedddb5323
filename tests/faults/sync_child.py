"""Child process of the client-kill test: an initial sync through the SDK, until killed.

Usage: ``python -m tests.faults.sync_child STORE_PATH SERVER_URL``. Opens (or reopens)
the store, logs in as ``rep1`` when it has no tokens, prints ``ready``, then syncs with
small pull pages, printing ``page <n>`` as each page is applied (so the parent can kill
it while the next one is being applied) and ``done`` at the end.
"""

from __future__ import annotations

import sys

from client_sdk import FAST_KDF, HttpTransport, Store, SyncClient, SyncConfig, SyncProgress
from sync_protocol import CRM_SCHEMA

PASSPHRASE = "client-kill passphrase"
PULL_LIMIT = 60


def main() -> None:
    path, url = sys.argv[1], sys.argv[2]
    store = Store.open(path, PASSPHRASE, schema=CRM_SCHEMA, kdf=FAST_KDF)
    client = SyncClient(
        store, HttpTransport(url, timeout_s=30), SyncConfig(pull_limit=PULL_LIMIT, max_attempts=3)
    )
    if not client.logged_in:
        client.login("rep1", "fieldsync-demo", device_name="client-kill")
    pages = 0

    def on_event(event: object) -> None:
        nonlocal pages
        if isinstance(event, SyncProgress) and event.phase == "pull":
            pages += 1
            print(f"page {pages}", flush=True)

    store.subscribe(on_event)
    print("ready", flush=True)
    client.sync()
    print("done", flush=True)
    store.close()


if __name__ == "__main__":
    main()
