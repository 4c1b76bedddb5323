"""Durability: a process writing and syncing through the SDK is SIGKILLed at random
instants 50 times; the store always reopens and every acknowledged write is there,
locally and — after the next sync — on a real server process."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from client_sdk import FAST_KDF, HttpTransport, Store, SyncClient
from sync_protocol import CRM_SCHEMA
from tests.support.server_proc import REPO_ROOT, ServerProcess

from .kill_child import PASSPHRASE

KILLS = 50

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    db = tmp_path_factory.mktemp("kill-server") / "server.db"
    with ServerProcess(f"sqlite:///{db}", seed_demo=True, demo_customers=3) as proc:
        yield proc


class Writers:
    """Drives ``kill_child``: fork a writer, kill it, collect what it acknowledged."""

    def __init__(self, store_path: Path, url: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.client_sdk.kill_child", str(store_path), url],
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        )

    def _send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def _line(self) -> bytes:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, "the writer script died"
        return line

    def run_once(self, delay_s: float) -> list[str]:
        self._send("go")
        head = self._line()
        assert head.startswith(b"child ")
        pid = int(head.split()[1])
        lines = []
        while (line := self._line()) != b"ready\n":
            lines.append(line)
        time.sleep(delay_s)
        os.kill(pid, signal.SIGKILL)
        self._send("reap")
        while (line := self._line()) != b"reaped\n":
            lines.append(line)
        # a line cut by the kill ends at the newline ``reap`` prints first: a cut id is
        # shorter than a UUID and was never acknowledged
        return [
            line.split()[1].decode()
            for line in lines
            if line.startswith(b"ack ") and len(line.split()) == 2 and len(line.split()[1]) == 36
        ]

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(10)


def test_acknowledged_writes_survive_sigkill(live_server: ServerProcess, tmp_path: Path) -> None:
    rng = random.Random(20261123)
    store_path = tmp_path / "device.db"
    writers = Writers(store_path, live_server.url)
    acknowledged: list[str] = []
    try:
        for _ in range(KILLS):
            acknowledged += writers.run_once(rng.uniform(0.0, 0.2))
            store = Store.open(store_path, PASSPHRASE, schema=CRM_SCHEMA)  # always reopens
            try:
                customers = store.collection("customers")
                missing = [i for i in acknowledged if customers.get(i) is None]
                assert not missing, f"{len(missing)} acknowledged writes lost"
            finally:
                store.close()
    finally:
        writers.close()
    assert len(acknowledged) > KILLS  # the kills really landed mid-stream

    store = Store.open(store_path, PASSPHRASE, schema=CRM_SCHEMA)
    client = SyncClient(store, HttpTransport(live_server.url))
    client.sync()
    assert store.status().pending_total == 0 and store.dead_letters() == []
    store.close()
    # a second device of the same user sees every acknowledged write
    other = Store.open(tmp_path / "other.db", "x", schema=CRM_SCHEMA, kdf=FAST_KDF)
    other_client = SyncClient(other, HttpTransport(live_server.url))
    other_client.login("rep1", "fieldsync-demo")
    other_client.sync()
    customers = other.collection("customers")
    assert [i for i in acknowledged if customers.get(i) is None] == []
    other.close()
