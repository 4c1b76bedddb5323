"""Child processes of the kill test: write through the SDK (and sync) until killed.

Usage: ``python -m tests.client_sdk.kill_child STORE_PATH SERVER_URL``. The script
imports the SDK once, then for every ``go`` line on stdin forks a writer and prints
``child <pid>``; the writer opens the store, prints ``ready``, then one line ``ack <id>``
per write the SDK acknowledged (``insert`` returned), flushed at once, and syncs every
ten writes. The parent SIGKILLs the writer at a random instant and sends ``reap``; the
script prints a newline and ``reaped`` after ``waitpid``, so every line the writer managed to write
comes before it. Forking from a warm interpreter keeps 50 kills within seconds.
"""

from __future__ import annotations

import os
import sys

from client_sdk import FAST_KDF, HttpTransport, SDKError, Store, SyncClient, SyncConfig
from sync_protocol import CRM_SCHEMA

PASSPHRASE = "kill-test passphrase"


def write_until_killed(path: str, url: str) -> None:
    store = Store.open(path, PASSPHRASE, schema=CRM_SCHEMA, kdf=FAST_KDF)
    client = SyncClient(store, HttpTransport(url, timeout_s=5), SyncConfig(max_attempts=1))
    if not client.logged_in:
        client.login("rep1", "fieldsync-demo", device_name="kill-test")
    customers = store.collection("customers")
    print("ready", flush=True)
    n = 0
    tag = os.getpid()
    while True:
        n += 1
        rec = customers.insert({"name": f"kill-{tag}-{n}", "status": "potential"})
        print(f"ack {rec.id}", flush=True)
        if n % 7 == 0:
            customers.update(rec.id, {"city": "Kunming"})
        if n % 10 == 0:
            try:
                client.sync()
            except SDKError as exc:  # keep writing; the parent checks durability
                print(f"sync-error {type(exc).__name__}", file=sys.stderr, flush=True)


def main() -> None:
    path, url = sys.argv[1], sys.argv[2]
    for command in sys.stdin:
        if command.strip() == "go":
            pid = os.fork()
            if pid == 0:
                try:
                    write_until_killed(path, url)
                finally:
                    os._exit(1)
            print(f"child {pid}", flush=True)
        elif command.strip() == "reap":
            os.waitpid(-1, 0)
            # leading newline: ends a line the killed writer may have cut short
            print("\nreaped", flush=True)


if __name__ == "__main__":
    main()
