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

After the run the world heals, every device syncs until nothing moves, and
:class:`Oracle` checks the outcome (see its docstring). The oracle observes only what a
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
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
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
from sync_protocol import CRM_SCHEMA, MergePolicy, Timestamp

from .server_proc import TEST_SECRET, ServerProcess, migrate, seed_demo

PASSWORD = "fieldsync-demo"
TEAM_ID = "team-east"
DAY_S = 86_400.0
STAGES = (
    "stage-lead",
    "stage-qualified",
    "stage-proposal",
    "stage-negotiation",
    "stage-won",
    "stage-lost",
)
#: Settings every simulated server runs with (the team logs in from one address).
SERVER_ENV = {
    "FIELDSYNC_LOGIN_MAX_ATTEMPTS_PER_ADDRESS": "100000",
    "FIELDSYNC_LOGIN_MAX_FAILURES_PER_USER": "100000",
}
MAX_DRIFT_MS = 5 * 60 * 1000  # the server default the clamp bounds assume


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


@dataclass
class Write:
    """One write the SDK acknowledged (insert/update/delete returned)."""

    device: int
    user_id: str
    collection: str
    record_id: str
    op: str
    fields: dict[str, Any]
    hlc: str
    step: int


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


class Simulation:
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
        restart_at = sorted(
            self.rng.randrange(1, cfg.operations) for _ in range(cfg.restarts)
        )
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
            device.client._call("POST", "/v1/admin/customers/reassign", body, retry=False)
        except NetworkError:
            self.stats["reassign_unknown"] += 1
            self.reassigned[customer.id].append(("?", target))
            return
        except SDKError as exc:
            self.stats[f"reassign_error_{getattr(exc, 'code', type(exc).__name__)}"] += 1
            return
        self.reassigned[customer.id].append((str(customer.get("owner_id")), target))
        self.stats["reassignments"] += 1

    # -- edits ---------------------------------------------------------------------------
    def edit(self, device: Device) -> None:
        store = device.store
        customers = store.collection("customers").all()
        r = self.rng.random()
        if not customers or r < 0.12:
            self.create_customer(device)
            return
        customer = self.rng.choice(customers)
        cid = customer.id
        if r < 0.30:
            field_name = self.rng.choice(("phone", "city", "status", "tier", "next_follow_up"))
            self.update(device, "customers", cid, {field_name: self.value_for(field_name)})
        elif r < 0.40:
            tags = list(customer.get("tags") or [])
            self.update(device, "customers", cid, {"tags": [*tags, self.uniq("tag")]})
        elif r < 0.50:
            notes = customer.get("notes") or ""
            line = self.uniq("note")
            self.update(
                device, "customers", cid, {"notes": f"{notes}\n{line}" if notes else line}
            )
        elif r < 0.58:
            self.insert(
                device,
                "activities",
                {
                    "customer_id": cid,
                    "type": self.rng.choice(("call", "visit", "note")),
                    "occurred_at": self.iso_now(device),
                    "subject": self.uniq("act"),
                },
            )
        elif r < 0.74:
            self.opportunity_edit(device, cid)
        elif r < 0.84:
            self.contract_edit(device, cid)
        elif r < 0.95:
            self.task_edit(device, cid)
        elif customer.version is not None and self.rng.random() < 0.5:
            self.delete(device, "customers", cid)
        else:
            self.update(device, "customers", cid, {"city": self.value_for("city")})

    def opportunity_edit(self, device: Device, cid: str) -> None:
        opps = [
            o for o in device.store.collection("opportunities").all() if o.get("customer_id") == cid
        ]
        r = self.rng.random()
        if not opps or r < 0.3:
            self.insert(
                device,
                "opportunities",
                {
                    "customer_id": cid,
                    "name": self.uniq("opp"),
                    "stage_id": STAGES[0],
                    "status": "open",
                    "amount": self.rng.randrange(1000, 900000),
                },
            )
            return
        opp = self.rng.choice(opps)
        if r < 0.75:
            to_stage = self.rng.choice(STAGES)
            if to_stage == opp.get("stage_id"):
                return
            if self.update(device, "opportunities", opp.id, {"stage_id": to_stage}):
                self.insert(
                    device,
                    "stage_changes",
                    {
                        "customer_id": cid,
                        "opportunity_id": opp.id,
                        "from_stage_id": opp.get("stage_id"),
                        "to_stage_id": to_stage,
                        "changed_at": self.iso_now(device),
                        "changed_by": device.user_id,
                    },
                )
        elif r < 0.92:
            self.update(
                device,
                "opportunities",
                opp.id,
                {"amount": self.rng.randrange(1000, 900000), "probability": self.rng.random()},
            )
        else:
            self.delete(device, "opportunities", opp.id)

    def contract_edit(self, device: Device, cid: str) -> None:
        contracts = [
            c for c in device.store.collection("contracts").all() if c.get("customer_id") == cid
        ]
        if not contracts or self.rng.random() < 0.3:
            self.insert(
                device,
                "contracts",
                {
                    "customer_id": cid,
                    "number": self.uniq("HT"),
                    "status": "draft",
                    "amount": self.rng.randrange(1000, 900000),
                },
            )
            return
        contract = self.rng.choice(contracts)
        patch: dict[str, Any] = {"amount": self.rng.randrange(1000, 900000)}
        if self.rng.random() < 0.3:
            patch = {"title": self.uniq("title")}
        self.update(device, "contracts", contract.id, patch)

    def task_edit(self, device: Device, cid: str) -> None:
        tasks = [t for t in device.store.collection("tasks").all() if t.get("customer_id") == cid]
        r = self.rng.random()
        if not tasks or r < 0.35:
            self.insert(
                device,
                "tasks",
                {"customer_id": cid, "title": self.uniq("task"), "status": "open"},
            )
        elif r < 0.85:
            status = self.rng.choice(("open", "done", "cancelled"))
            self.update(device, "tasks", self.rng.choice(tasks).id, {"status": status})
        else:
            self.delete(device, "tasks", self.rng.choice(tasks).id)

    def create_customer(self, device: Device) -> None:
        self.insert(
            device,
            "customers",
            {
                "name": self.uniq("客户 customer"),
                "status": self.rng.choice(("potential", "intent", "closed")),
                "tier": self.rng.choice(("high", "mid", "low")),
                "tags": [self.uniq("tag")],
                "notes": self.uniq("note"),
                "city": self.value_for("city"),
            },
        )

    def value_for(self, name: str) -> Any:
        if name == "phone":
            return f"+86 {self.rng.randrange(10**9, 10**10)}"
        if name == "city":
            return self.uniq("city")
        if name == "status":
            return self.rng.choice(("potential", "intent", "closed"))
        if name == "tier":
            return self.rng.choice(("high", "mid", "low"))
        if name == "next_follow_up":
            return (datetime(2026, 1, 1) + timedelta(days=self.rng.randrange(400))).date().isoformat()
        raise AssertionError(name)

    def iso_now(self, device: Device) -> str:
        return datetime.fromtimestamp(device.clock.time(), UTC).isoformat(timespec="seconds")

    def insert(self, device: Device, collection: str, fields: dict[str, Any]) -> str:
        rid = self.uniq(collection[:4])
        record = device.store.collection(collection).insert(fields, id=rid)
        self._record(device, collection, record.id, "upsert", fields)
        return str(record.id)

    def update(self, device: Device, collection: str, rid: str, patch: dict[str, Any]) -> bool:
        col = device.store.collection(collection)
        before = col.get(rid)
        if before is None:
            return False
        changed = {k: v for k, v in patch.items() if before.get(k) != v or k not in before.fields}
        col.update(rid, patch)
        if changed:
            self._record(device, collection, rid, "upsert", changed)
        return True

    def delete(self, device: Device, collection: str, rid: str) -> None:
        device.store.collection(collection).delete(rid)
        self._record(device, collection, rid, "delete", {})

    def _record(
        self, device: Device, collection: str, rid: str, op: str, fields: dict[str, Any]
    ) -> None:
        hlc = device.store.meta_get("hlc") or ""
        self.writes.append(
            Write(device.index, device.user_id, collection, rid, op, dict(fields), hlc, self.step)
        )
        self.stats[f"writes_{collection}_{op}"] += 1

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


# ---- the oracle ------------------------------------------------------------------------


@dataclass
class ServerRow:
    collection: str
    record_id: str
    owner_id: str | None
    deleted: bool
    fields: dict[str, Any]
    clocks: dict[str, list[Any]]


@dataclass
class Oracle:
    """Checks the healed world. Every rule is a *must*; nothing is sampled.

    1. **Convergence and scope.** Every device holds exactly the server's live records
       that its user may see (owner is the user, or a member of the manager's team, or
       reference data) — same ids, same decoded fields, ``_conflicts`` included — and
       nothing else; no device has pending writes left.
    2. **No lost acknowledged write.** Every write the SDK acknowledged left the device
       in a mutation the server accepted, unless it sits in the device's dead letters
       for a reason the world explains (the customer was reassigned away: ``forbidden``)
       or its record was deleted on purpose. For an accepted mutation, per field:

       * ``lww`` / ``manual``: the server's value is the mutation's, or the field's final
         clock is at least the mutation's effective HLC (it was superseded by a later
         write; the effective HLC is the device's, clamped by the server to
         ``now + max_drift`` — bounded from the real time the mutation was first sent),
         or (manual) a ``_conflicts`` record of that mutation holds the value. The final
         value itself must be the value of the write its clock names;
       * ``union`` (tags; the simulator only ever adds unique tags): every tag is there;
       * ``append`` (notes; only unique lines are appended): every line is there.

       A write to a record deleted on the server is excused only if some device's
       acknowledged delete of that record was accepted.
    3. **Exactly once.** Every mutation has one ``applied_mutations`` row and one audit
       row; no rejection other than the explained ``forbidden`` ones.
    """

    sim: Simulation
    failures: list[str] = field(default_factory=list)

    def fail(self, message: str) -> None:
        self.failures.append(message)

    def load_server(self) -> None:
        from sqlalchemy import text

        from server.db import make_engine

        engine = make_engine(self.sim.config.db_url)
        try:
            with engine.connect() as conn:
                self.rows = {
                    (r.collection, r.record_id): ServerRow(
                        r.collection,
                        r.record_id,
                        r.owner_id,
                        bool(r.deleted),
                        json.loads(r.data) if r.data else {},
                        json.loads(r.clocks) if r.clocks else {},
                    )
                    for r in conn.execute(
                        text(
                            "SELECT collection, record_id, owner_id, deleted, data, clocks "
                            "FROM records"
                        )
                    )
                }
                self.applied = {
                    r.mutation_id: json.loads(r.result)
                    for r in conn.execute(text("SELECT mutation_id, result FROM applied_mutations"))
                }
                self.audit: Counter[str] = Counter()
                for (details,) in conn.execute(
                    text("SELECT details FROM audit_log WHERE action LIKE 'mutation.%'")
                ):
                    self.audit[json.loads(details)["mutation_id"]] += 1
                self.team = {
                    r[0] for r in conn.execute(text("SELECT id FROM users WHERE team_id = :t"), {"t": TEAM_ID})
                }
        finally:
            engine.dispose()

    def sees(self, user_id: str, owner_id: str | None) -> bool:
        if owner_id is None:
            return True
        if user_id == "u-manager":
            return owner_id == user_id or owner_id in self.team
        return owner_id == user_id

    # -- 1 -------------------------------------------------------------------------------
    def check_convergence(self) -> None:
        names = [*CRM_SCHEMA.entities, "_conflicts"]
        for d in self.sim.devices:
            status = d.store.status()
            if status.pending_total:
                self.fail(f"device {d.index}: {status.pending_total} writes still pending")
            held: dict[tuple[str, str], dict[str, Any]] = {}
            for name in names:
                for rid, rec in d.store.cache(name).records.items():
                    held[(name, rid)] = rec.fields
            expected = {
                key: row.fields
                for key, row in self.rows.items()
                if not row.deleted and self.sees(d.user_id, row.owner_id)
            }
            for key in sorted(expected.keys() - held.keys()):
                self.fail(f"device {d.index} ({d.username}) lacks {key[0]}/{key[1]}")
            for key in sorted(held.keys() - expected.keys()):
                row = self.rows.get(key)
                why = "unknown to the server" if row is None else (
                    "deleted on the server" if row.deleted else f"owned by {row.owner_id}"
                )
                self.fail(f"device {d.index} ({d.username}) holds {key[0]}/{key[1]}: {why}")
            for key in sorted(expected.keys() & held.keys()):
                if expected[key] != held[key]:
                    diff = sorted(
                        k
                        for k in expected[key].keys() | held[key].keys()
                        if expected[key].get(k) != held[key].get(k)
                    )
                    self.fail(f"device {d.index} differs from the server on {key}: fields {diff}")

    # -- 2 -------------------------------------------------------------------------------
    def check_writes(self) -> None:
        sim = self.sim
        dead: dict[int, dict[str, Any]] = {
            d.index: {x.id: x for x in d.store.dead_letters()} for d in sim.devices
        }
        by_device_record: dict[tuple[int, str, str], list[SentMutation]] = defaultdict(list)
        for m in sim.sent.values():
            by_device_record[(m.device, m.collection, m.record_id)].append(m)
        for ms in by_device_record.values():
            ms.sort(key=lambda m: m.hlc)
        deleted_on_purpose = {
            (m.collection, m.record_id)
            for m in sim.sent.values()
            if m.op == "delete" and self._accepted(m.id)
        }
        dropped_offline = {
            (w.device, w.collection, w.record_id)
            for w in sim.writes
            if w.op == "delete"
        }
        self.stats: Counter[str] = Counter()
        self.by_record: dict[tuple[str, str], list[SentMutation]] = defaultdict(list)
        for m in sim.sent.values():
            self.by_record[(m.collection, m.record_id)].append(m)
        for w in sim.writes:
            key = (w.collection, w.record_id)
            candidates = [
                m for m in by_device_record.get((w.device, *key), []) if m.hlc >= w.hlc
            ]
            m = candidates[0] if candidates else None
            if m is None:
                explained = self._dead_explained(w, dead[w.device], None)
                if explained:
                    self.stats["writes_dead_lettered"] += 1
                elif (w.device, *key) in dropped_offline:
                    self.stats["writes_dropped_by_own_delete"] += 1
                else:
                    self.fail(f"acknowledged write never left device {w.device}: {w}")
                continue
            result = self.applied.get(m.id)
            if result is None:
                if m.id in dead[w.device] and self._dead_explained(w, dead[w.device], m):
                    self.stats["writes_dead_lettered"] += 1
                    continue
                self.fail(f"mutation {m.id} of {w} never reached the server")
                continue
            if result.get("status") == "rejected":
                if self._dead_explained(w, dead[w.device], m):
                    self.stats["writes_rejected_after_reassignment"] += 1
                else:
                    self.fail(f"mutation {m.id} rejected: {result.get('error')} ({w})")
                continue
            if w.op == "delete":
                continue
            row = self.rows.get(key)
            if row is None:
                self.fail(f"accepted write to {key} but the server has no such record")
                continue
            if row.deleted and key in deleted_on_purpose:
                self.stats["writes_to_deleted_records"] += 1
                continue
            if row.deleted:
                self.fail(f"{key} is deleted on the server but nobody's delete was accepted")
                continue
            entity = CRM_SCHEMA[w.collection]
            for name, value in w.fields.items():
                spec = entity.fields.get(name)
                policy = spec.merge if spec else MergePolicy.LWW
                self._check_field(w, m, row, name, value, policy)

    def _accepted(self, mutation_id: str) -> bool:
        result = self.applied.get(mutation_id)
        return result is not None and result.get("status") != "rejected"

    def _dead_explained(self, w: Write, dead: dict[str, Any], m: SentMutation | None) -> bool:
        """A dead letter is acceptable only when the customer left the user's scope."""
        letters = [x for x in dead.values() if (x.collection, x.record_id) == (w.collection, w.record_id)]
        if m is not None:
            letters = [x for x in letters if x.id == m.id]
        if not letters:
            return False
        same_record = [
            x for x in dead.values() if (x.collection, x.record_id) == (w.collection, w.record_id)
        ]
        for letter in letters:
            code = letter.error.get("code")
            # A create refused as ``forbidden`` takes the record's later edits with it:
            # the server answers those ``validation_failed`` (the record never existed).
            cascade = code == "validation_failed" and any(
                x.error.get("code") == "forbidden" for x in same_record
            )
            if code != "forbidden" and not cascade:
                self.fail(f"dead letter {letter.id} for {w}: {letter.error}")
                return True
            if cascade:
                self.stats["dead_letters_cascading_from_forbidden_create"] += 1
        customer = self._customer_of(w)
        if customer is None or not self.sim.reassigned.get(customer):
            self.fail(f"write dead-lettered as forbidden but its customer was never reassigned: {w}")
        return True

    def _customer_of(self, w: Write) -> str | None:
        if w.collection == "customers":
            return w.record_id
        row = self.rows.get((w.collection, w.record_id))
        if row is not None and "customer_id" in row.fields:
            return str(row.fields["customer_id"])
        for other in self.sim.writes:
            if (other.collection, other.record_id) == (w.collection, w.record_id):
                if "customer_id" in other.fields:
                    return str(other.fields["customer_id"])
        return None

    def _check_field(
        self, w: Write, m: SentMutation, row: ServerRow, name: str, value: Any, policy: MergePolicy
    ) -> None:
        final = row.fields.get(name)
        where = f"{w.collection}/{w.record_id}.{name}"
        if policy is MergePolicy.UNION:
            missing = [t for t in value if t not in (final or [])]
            if missing:
                self.fail(f"tags {missing} written by device {w.device} (mutation {m.id}) lost from {where}")
            return
        if policy is MergePolicy.APPEND:
            line = str(value).rsplit("\n", 1)[-1]
            lines = str(final or "").split("\n")
            if line not in lines:
                self.fail(f"note line {line!r} (device {w.device}, mutation {m.id}) lost from {where}")
            elif lines.count(line) > 1:
                self.stats["duplicated_note_lines"] += 1
            return
        if final == value:
            self.stats["writes_present"] += 1
            return
        if policy is MergePolicy.MANUAL and self._in_conflict(m.id, w, name, value):
            self.stats["writes_in_conflicts"] += 1
            return
        clock = row.clocks.get(name)
        if clock is None:
            self.fail(f"{where} has no clock but {w} was accepted")
            return
        final_hlc = Timestamp.parse(clock[0])
        lower = self._effective_lower_bound(m)
        if lower > final_hlc and self._overwritten_by_one_who_saw_it(m, name):
            # A device that had pulled this value wrote over it: superseded causally,
            # even though that later write's HLC is smaller (see the report on server
            # HLC regressions across restarts and workers).
            self.stats["writes_superseded_causally_with_smaller_hlc"] += 1
            return
        if lower > final_hlc:
            self.fail(
                f"{where}: write {value!r} (device {w.device}, mutation {m.id}, effective HLC "
                f">= {lower.encode()}) lost to an older write (clock {clock[0]}, value {final!r})"
            )
            return
        self.stats["writes_superseded"] += 1

    def _overwritten_by_one_who_saw_it(self, m: SentMutation, name: str) -> bool:
        """Some accepted write of ``name`` had ``m``'s result as its base (causally later)."""
        landed = (self.applied.get(m.id) or {}).get("version")
        if landed is None:
            return False
        return any(
            other.id != m.id
            and name in other.fields
            and other.base_version is not None
            and other.base_version >= landed
            and self._accepted(other.id)
            for other in self.by_record.get((m.collection, m.record_id), [])
        )

    def _effective_lower_bound(self, m: SentMutation) -> Timestamp:
        """The smallest HLC the server can have stored for ``m`` after its clamp."""
        ts = Timestamp.parse(m.hlc)
        limit = int(m.first_start * 1000) + MAX_DRIFT_MS - 5
        return Timestamp(min(ts.wall_ms, limit), ts.counter, ts.node)

    def _in_conflict(self, mutation_id: str, w: Write, name: str, value: Any) -> bool:
        for row in self.rows.values():
            if row.collection != "_conflicts":
                continue
            f = row.fields
            if (
                f.get("record_id") == w.record_id
                and f.get("field") == name
                and (f.get("local") == value or f.get("remote") == value)
            ):
                return True
        return False

    def check_final_values_have_writers(self) -> None:
        """Each lww field's final value is the value of the write its clock names."""
        by_hlc: dict[tuple[str, str], list[SentMutation]] = defaultdict(list)
        for m in self.sim.sent.values():
            by_hlc[(m.collection, m.record_id)].append(m)
        for key, row in self.rows.items():
            if row.deleted or key[0] == "_conflicts":
                continue
            entity = CRM_SCHEMA.get(key[0])
            if entity is None:
                continue
            for name, clock in row.clocks.items():
                spec = entity.fields.get(name)
                if spec is None or spec.merge is not MergePolicy.LWW or name == "owner_id":
                    continue
                ts = Timestamp.parse(clock[0])
                writers = [
                    m
                    for m in by_hlc.get(key, [])
                    if name in m.fields and self._could_be(m, ts)
                ]
                if not writers:
                    continue  # seeded data or a write the oracle did not see (server-made)
                if all(m.fields[name] != row.fields.get(name) for m in writers):
                    self.fail(
                        f"{key[0]}/{key[1]}.{name} = {row.fields.get(name)!r} but the write "
                        f"its clock {clock[0]} names wrote {[m.fields[name] for m in writers]}"
                    )

    @staticmethod
    def _could_be(m: SentMutation, ts: Timestamp) -> bool:
        mine = Timestamp.parse(m.hlc)
        return mine.node == ts.node and mine.counter == ts.counter and mine.wall_ms >= ts.wall_ms

    # -- 3 -------------------------------------------------------------------------------
    def check_exactly_once(self) -> None:
        for mid in self.sim.sent:
            if mid not in self.applied:
                continue
            if self.audit.get(mid, 0) != 1:
                self.fail(f"mutation {mid} has {self.audit.get(mid, 0)} audit rows (want 1)")
        twice = [mid for mid, n in self.audit.items() if n > 1]
        if twice:
            self.fail(f"{len(twice)} mutations applied more than once, e.g. {twice[:3]}")
        created: Counter[str] = Counter()
        for m in self.sim.sent.values():
            if m.collection in ("activities", "stage_changes") and self._accepted(m.id):
                created[m.record_id] += 1
        for rid, n in created.items():
            if n > 1:
                self.fail(f"event {rid} created by {n} accepted mutations")

    def run(self) -> list[str]:
        self.load_server()
        self.check_convergence()
        self.check_writes()
        self.check_final_values_have_writers()
        self.check_exactly_once()
        return self.failures


def run_simulation(config: SimConfig) -> SimResult:
    """Run one seeded simulation end to end and judge it."""
    sim = Simulation(config)
    started = time.monotonic()
    try:
        with config.tamper() if config.tamper is not None else contextlib.nullcontext():
            sim.setup()
            sim.run()
            rounds = sim.heal()
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
