"""The convergence simulator: a seeded hostile world for the real SDK and the real server.

``run_simulation(SimConfig(...))`` builds a team (a manager and several reps, each with
one or more devices), gives every device a real encrypted :class:`client_sdk.Store`
(FAST_KDF) whose clock is skewed by up to ±3 days, and lets them make random CRM edits
through the public SDK API while the world misbehaves:

* devices go offline for random stretches (partitions) and sync in random order;
* requests are cut *before* they reach the server or *after* it processed them (the
  answer is lost), and push batches are delivered twice;
* the server is restarted mid-run (in process: a new app on the same database; with
  ``server="process"``: a real uvicorn process killed with SIGKILL and started again);
* the manager reassigns customers between reps through ``/v1/admin/customers/reassign``.

Everything random comes from ``random.Random(seed)``, so a failing seed is replayed by
running it again (wall-clock timing and thread scheduling aside).

After the run the world heals, every device syncs until nothing moves, and the oracle
(:class:`tests.simulation.oracle.Oracle`) checks the outcome. The edits themselves are
in :mod:`tests.simulation.edits`. The oracle observes only what a
user could: the acknowledged writes (``Collection.insert/update/delete`` returned), the
mutations that left each device (seen on the wire by :class:`FaultyTransport`), the
device's dead letters, and the server's database at the end.
"""

from __future__ import annotations

import contextlib
import json
import random
import shutil
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from client_sdk import (
    FAST_KDF,
    HttpTransport,
    NetworkError,
    SDKError,
    Store,
    SyncClient,
    SyncConfig,
    TransportRequest,
    TransportResponse,
)
from client_sdk._runner import Request
from sync_protocol import CRM_SCHEMA, MergePolicy
from tests.simulation.edits import CrmEdits, Write

from .server_proc import TEST_SECRET, ServerProcess, migrate, seed_demo

PASSWORD = "fieldsync-demo"
TEAM_ID = "team-east"
DAY_S = 86_400.0
#: Settings every simulated server runs with (the team logs in from one address).
SERVER_ENV = {
    "FIELDSYNC_LOGIN_MAX_ATTEMPTS_PER_ADDRESS": "100000",
    "FIELDSYNC_LOGIN_MAX_FAILURES_PER_USER": "100000",
}


# ---- configuration ---------------------------------------------------------------------


@dataclass
class SimConfig:
    seed: int
    db_url: str
    devices: int = 5
    reps: int = 3
    operations: int = 300
    #: "inprocess" (FastAPI TestClient as the SDK transport) or "process" (uvicorn).
    server: str = "inprocess"
    sync_probability: float = 0.15
    partition_probability: float = 0.02
    cut_before: float = 0.05
    cut_after: float = 0.05
    duplicate: float = 0.08
    restarts: int = 2
    reassign_probability: float = 0.02
    max_skew_s: float = 3 * DAY_S
    work_dir: Path | None = None
    log: Callable[[str], None] | None = None
    #: Test-only: called with the in-process app's module namespace before the run
    #: (e.g. to break the merge). Ignored for ``server="process"``.
    tamper: Callable[[], contextlib.AbstractContextManager[Any]] | None = None


@dataclass
class SimResult:
    seed: int
    ok: bool
    failures: list[str]
    stats: dict[str, Any]

    def summary(self) -> str:
        head = "PASS" if self.ok else f"FAIL ({len(self.failures)} problems)"
        lines = [f"seed {self.seed}: {head} {json.dumps(self.stats, sort_keys=True)}"]
        lines.extend(f"  - {f}" for f in self.failures[:40])
        return "\n".join(lines)


# ---- the device side ---------------------------------------------------------------------


class SkewedClock:
    """The real clock plus a per-device offset (a phone whose time is wrong)."""

    def __init__(self, offset_s: float) -> None:
        self.offset_s = offset_s

    def time(self) -> float:
        return time.time() + self.offset_s


@dataclass
class SentMutation:
    """A mutation as it left a device: what the oracle needs to know about it."""

    id: str
    device: int
    collection: str
    record_id: str
    op: str
    hlc: str
    fields: dict[str, Any]
    base_version: int | None
    #: Real time of the first send attempt, and the end of the first attempt answered.
    first_start: float
    first_answer: float | None = None


class FaultyTransport:
    """Wraps the real transport: partitions, cuts before/after the server, duplicates."""

    def __init__(self, sim: Simulation, device: int, rng: random.Random) -> None:
        self.sim = sim
        self.device = device
        self.rng = rng
        self.offline = False
        self.faults = True
        self.inner: Any = None

    def send(self, request: TransportRequest) -> TransportResponse:
        sim = self.sim
        if self.offline:
            raise NetworkError("partitioned (simulated)")
        faulty = self.faults and request.path.startswith(("/v1/sync/", "/v1/admin/"))
        if faulty and self.rng.random() < sim.config.cut_before:
            sim.stats["cut_before"] += 1
            raise NetworkError("connection cut before the server (simulated)")
        pushed = self._note_push(request)
        response = self._send(request, pushed)
        if faulty and pushed and self.rng.random() < sim.config.duplicate:
            sim.stats["duplicated_pushes"] += 1
            response = self._send(request, pushed)
        if faulty and self.rng.random() < sim.config.cut_after:
            sim.stats["cut_after"] += 1
            raise NetworkError("answer lost after the server processed it (simulated)")
        return response

    def _send(self, request: TransportRequest, pushed: list[SentMutation]) -> TransportResponse:
        response: TransportResponse = self.inner.send(request)
        now = time.time()
        for m in pushed:
            if m.first_answer is None:
                m.first_answer = now
        return response

    def _note_push(self, request: TransportRequest) -> list[SentMutation]:
        if request.path != "/v1/sync/push" or not isinstance(request.body, dict):
            return []
        out = []
        now = time.time()
        for raw in request.body.get("mutations", []):
            known = self.sim.sent.get(raw["id"])
            if known is None:
                known = self.sim.sent[raw["id"]] = SentMutation(
                    id=raw["id"],
                    device=self.device,
                    collection=raw["collection"],
                    record_id=raw["record_id"],
                    op=raw.get("op", "upsert"),
                    hlc=raw["hlc"],
                    fields=dict(raw.get("fields") or {}),
                    base_version=raw.get("base_version"),
                    first_start=now,
                )
            out.append(known)
        return out

    def close(self) -> None:
        return None


@dataclass
class Device:
    index: int
    username: str
    user_id: str
    store: Store
    client: SyncClient
    transport: FaultyTransport
    clock: SkewedClock
    offline_until: int = -1


# ---- the server side -------------------------------------------------------------------


class InProcessServer:
    """The FastAPI app behind a TestClient; "restart" builds a fresh app on the same db."""

    def __init__(self, db_url: str) -> None:
        self.db_url = db_url
        self.app: Any = None
        self.client: Any = None

    def start(self) -> None:
        from fastapi.testclient import TestClient

        from server.app import create_app
        from server.settings import Settings

        settings = Settings(
            env="test",
            database_url=self.db_url,
            secret_key=TEST_SECRET,
            login_max_attempts_per_address=100_000,
            login_max_failures_per_user=100_000,
        )
        self.app = create_app(settings)
        self.client = TestClient(self.app, raise_server_exceptions=False)

    def transport(self) -> HttpTransport:
        return HttpTransport(client=self.client)

    def restart(self) -> None:
        self.stop()
        self.start()

    def stop(self) -> None:
        if self.client is not None:
            self.client.close()
            self.app.state.fieldsync.engine.dispose()
            self.client = self.app = None


class RealServer:
    def __init__(self, db_url: str, log_path: Path | None) -> None:
        self.proc = ServerProcess(db_url, env=SERVER_ENV, migrate=False, log_path=log_path)

    def start(self) -> None:
        self.proc.start()

    def transport(self) -> HttpTransport:
        return HttpTransport(self.proc.url, timeout_s=60.0)

    def restart(self) -> None:
        self.proc.restart(kill=True)  # SIGKILL, like a power cut

    def stop(self) -> None:
        self.proc.stop()


def prepare_database(db_url: str, reps: int) -> dict[str, str]:
    """Migrate, seed the demo team (stages, products, no customers), add reps; username->id."""
    from server.accounts import create_user
    from server.auth import hash_password
    from server.db import make_engine, make_session_factory

    migrate(db_url)
    seed_demo(db_url, customers=0)
    users = {"manager": "u-manager", "rep1": "u-rep1", "rep2": "u-rep2"}
    engine = make_engine(db_url)
    try:
        with make_session_factory(engine)() as session:
            pw = hash_password(PASSWORD)
            for n in range(3, reps + 1):
                name = f"rep{n}"
                user = create_user(
                    session,
                    username=name,
                    password=PASSWORD,
                    password_hash=pw,
                    team_id=TEAM_ID,
                    user_id=f"u-{name}",
                )
                users[name] = user.id
            session.commit()
    finally:
        engine.dispose()
    return {k: v for k, v in users.items() if k == "manager" or int(k[3:]) <= reps}


# ---- the simulation --------------------------------------------------------------------


class Simulation(CrmEdits):
    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.stats: Counter[str] = Counter()
        self.sent: dict[str, SentMutation] = {}
        self.writes: list[Write] = []
        self.reassigned: dict[str, list[tuple[str, str]]] = defaultdict(list)
        self.devices: list[Device] = []
        self.step = 0
        self._uniq = 0
        self._own_dir = config.work_dir is None
        self.work_dir = config.work_dir or Path(tempfile.mkdtemp(prefix="fieldsync-sim-"))
        self.server: InProcessServer | RealServer
        if config.server == "process":
            self.server = RealServer(config.db_url, self.work_dir / "server.log")
        else:
            self.server = InProcessServer(config.db_url)

    def log(self, message: str) -> None:
        if self.config.log is not None:
            self.config.log(f"[seed {self.config.seed} step {self.step}] {message}")

    def uniq(self, prefix: str) -> str:
        self._uniq += 1
        return f"{prefix}-{self.config.seed}-{self._uniq}"

    # -- set-up --------------------------------------------------------------------------
    def setup(self) -> None:
        cfg = self.config
        self.users = prepare_database(cfg.db_url, cfg.reps)
        self.server.start()
        owners = ["manager"] + [f"rep{n}" for n in range(1, cfg.reps + 1)]
        for i in range(cfg.devices):
            username = owners[i % len(owners)]
            skew = self._skew()
            clock = SkewedClock(skew)
            store = Store.open(
                self.work_dir / f"device-{i}.db",
                f"passphrase {i}",
                schema=CRM_SCHEMA,
                kdf=FAST_KDF,
                clock=clock,
            )
            transport = FaultyTransport(self, i, random.Random(self.rng.random()))
            transport.inner = self.server.transport()
            config = SyncConfig(
                push_batch=self.rng.choice((5, 20, 200)),
                pull_limit=self.rng.choice((7, 50, 1000)),
                max_attempts=3,
                backoff_initial_s=0.0,
                sleep=lambda _s: None,
                rng=random.Random(self.rng.random()),
            )
            client = SyncClient(store, transport, config)
            transport.faults = False
            client.login(username, PASSWORD, device_name=f"sim device {i}")
            transport.faults = True
            self.devices.append(
                Device(i, username, self.users[username], store, client, transport, clock)
            )
            self.log(f"device {i}: {username}, clock skew {skew / 3600:+.1f} h")

    def _skew(self) -> float:
        r = self.rng.random()
        if r < 0.4:
            return self.rng.uniform(-60, 60)
        return self.rng.uniform(-self.config.max_skew_s, self.config.max_skew_s)

    # -- the run -------------------------------------------------------------------------
    def run(self) -> None:
        cfg = self.config
        restart_at = sorted(self.rng.randrange(1, cfg.operations) for _ in range(cfg.restarts))
        for self.step in range(cfg.operations):
            while restart_at and restart_at[0] <= self.step:
                restart_at.pop(0)
                self.restart_server()
            device = self.rng.choice(self.devices)
            device.transport.offline = device.offline_until > self.step
            r = self.rng.random()
            if r < cfg.partition_probability and device.offline_until <= self.step:
                device.offline_until = self.step + self.rng.randint(5, max(6, cfg.operations // 8))
                self.stats["partitions"] += 1
                continue
            if r < cfg.partition_probability + 0.01:
                device.clock.offset_s = self._skew()  # the phone's time gets changed
                self.stats["clock_changes"] += 1
                continue
            if r < cfg.partition_probability + 0.01 + cfg.sync_probability:
                self.sync(device)
                continue
            if device.username == "manager" and self.rng.random() < cfg.reassign_probability * 5:
                self.reassign(device)
                continue
            self.edit(device)

    def restart_server(self) -> None:
        self.stats["server_restarts"] += 1
        self.log("server restart")
        self.server.restart()
        if isinstance(self.server, InProcessServer):
            for d in self.devices:
                d.transport.inner = self.server.transport()

    def sync(self, device: Device) -> bool:
        try:
            report = device.client.sync()
        except SDKError as exc:
            self.stats[f"sync_error_{type(exc).__name__}"] += 1
            return False
        self.stats["syncs"] += 1
        self.stats["pulled"] += report.pulled
        return True

    def reassign(self, device: Device) -> None:
        customers = [r for r in device.store.collection("customers").all() if r.version]
        if not customers:
            return
        customer = self.rng.choice(customers)
        target = self.rng.choice([u for n, u in self.users.items() if n.startswith("rep")])
        if customer.get("owner_id") == target:
            return
        body = {"customer_ids": [customer.id], "new_owner_id": target}
        try:
            request = Request("POST", "/v1/admin/customers/reassign", body)
            device.client._runner.call(request, retry=False)
        except NetworkError:
            self.stats["reassign_unknown"] += 1
            self.reassigned[customer.id].append(("?", target))
            return
        except SDKError as exc:
            self.stats[f"reassign_error_{getattr(exc, 'code', type(exc).__name__)}"] += 1
            return
        self.reassigned[customer.id].append((str(customer.get("owner_id")), target))
        self.stats["reassignments"] += 1

    # -- healing -------------------------------------------------------------------------
    def heal(self, max_rounds: int = 12) -> int:
        """Everyone online, no faults; sync (random order) until a round changes nothing."""
        for d in self.devices:
            d.transport.offline = False
            d.transport.faults = False
        for n in range(1, max_rounds + 1):
            moved = 0
            order = list(self.devices)
            self.rng.shuffle(order)
            for d in order:
                report = d.client.sync()
                moved += report.pushed + report.pulled
            if moved == 0:
                return n
        raise AssertionError(f"no quiescence after {max_rounds} sync rounds")

    def close(self) -> None:
        for d in self.devices:
            with contextlib.suppress(Exception):
                d.store.close()
        self.server.stop()
        if self._own_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)


def run_simulation(config: SimConfig) -> SimResult:
    """Run one seeded simulation end to end and judge it."""
    sim = Simulation(config)
    started = time.monotonic()
    try:
        with config.tamper() if config.tamper is not None else contextlib.nullcontext():
            sim.setup()
            sim.run()
            rounds = sim.heal()
        from tests.simulation.oracle import Oracle

        oracle = Oracle(sim)
        failures = oracle.run()
        stats = dict(sim.stats)
        stats.update(oracle.stats)
        stats.update(
            heal_rounds=rounds,
            acknowledged_writes=len(sim.writes),
            mutations_sent=len(sim.sent),
            devices=config.devices,
            operations=config.operations,
            seconds=round(time.monotonic() - started, 1),
        )
        return SimResult(config.seed, not failures, failures, stats)
    finally:
        sim.close()


@contextlib.contextmanager
def broken_lww_merge() -> Iterator[None]:
    """Test-only switch: the server's merge keeps the *remote* value of every lww field
    it already holds (the local edit is dropped) — the bug the simulator must catch."""
    from server.repository import push
    from sync_protocol import merge_record

    def keep_remote(schema: Any, base: Any, local: Any, remote: Any, *, new_version: int) -> Any:
        result = merge_record(schema, base, local, remote, new_version=new_version)
        if remote is not None and not remote.deleted:
            for name in local.fields:
                spec = schema.fields.get(name)
                if spec is not None and spec.merge is MergePolicy.LWW and name in remote.fields:
                    result.record.fields[name] = remote.fields[name]
                    result.record.clocks[name] = remote.clocks[name]
        return result

    original = push.merge_record
    push.merge_record = keep_remote
    try:
        yield
    finally:
        push.merge_record = original
