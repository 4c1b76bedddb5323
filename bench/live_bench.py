"""Live sync at scale: 1,000 connected devices across two instances on one PostgreSQL.

    .venv/bin/python -m bench.live_bench [--quick] [--devices 1000] [--changes 100000]

Devices are 100 teams of a manager and 9 reps, each with one device, streams split
between instance A and instance B; tokens are signed with the servers' key (a thousand
Argon2 sign-ins would only time the password hash). Each device is an asyncio task pair
(a raw HTTP/1.1 reader of its event stream, and a puller that pulls when poked) on a
lean keep-alive HTTP client (:class:`RawHttp`: httpx would spend more CPU per request
than the server's pull handler, on the same two cores).

**Two simulator processes.** The *crowd* — every device not measured — runs in a
subprocess of its own (``--crowd``); this process holds only the measured devices (the
latency phase's managers, the missed phase's ten teams and the admin) and the writers,
so its event loop is never the thing being timed.

1. **Latency**: a rep's write pushed to one instance; its manager's device streams from
   the *other* instance, pulls when poked, and the time from "push sent" to "the change
   is in the manager's device" is taken (and to the push's answer, to the poke). Aim
   p50 ≤ 50 ms, p99 ≤ 150 ms. **The ceiling**, interleaved with the samples (same load,
   same client code): a bare SSE echo process (``--echo``: no framework, no database)
   where a POST makes it send an event on another connection, which then makes one
   more request — the floor this machine gives two Python processes for "a write
   request → an event on another device's stream → that device's request" (and the
   proof that the simulator is not what is measured). **The durable-commit floor**,
   interleaved too: one ``INSERT`` + ``COMMIT`` on the same PostgreSQL — what any write
   that survives a crash waits for, whatever else the machine's writers are doing.
2. **Memory**: RSS of both server processes with no stream, and with every device
   connected and idle; the difference per device.
3. **No missed change**: ``--changes`` upserts (batches of 100 from 4 writers, both
   instances) into 10 teams while every device stays connected, and instance A and B
   are restarted alternately ``--restarts`` times meanwhile. Devices only ever pull
   when poked (or when ``ready`` after a reconnect shows a checkpoint they do not hold) —
   never on a timer. Afterwards every in-scope device's copy is compared with the
   database: the number of (device, record) pairs it lacks or holds stale is "missed".
   Out-of-scope devices (the crowd's and the other managers) must get no poke at all.
4. **Push scaling** (``--phases push``; the figure of record is the push bench's): batches
   of 100 new customers for ``--push-seconds``: one writer on one instance, then 4
   writers across 2 instances (streams closed).

Writes ``bench/results/live.json`` (``bench/results/quick/live.json`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from sync_protocol import HybridLogicalClock  # noqa: E402
from tests.support.server_proc import TEST_SECRET, ServerProcess, free_port  # noqa: E402
from tests.support.simulator import SERVER_ENV  # noqa: E402

from .fleet_bench import percentile  # noqa: E402
from .simulate import database  # noqa: E402

RESULTS = REPO / "bench" / "results"
TEAM_SIZE = 10  # a manager and 9 reps
PASSWORD = "fieldsync-demo"


# ---- the database ----------------------------------------------------------------------


@dataclass
class Person:
    user_id: str
    role: str
    team: int
    device_id: str
    token: str = ""


def prepare(db_url: str, devices: int) -> list[Person]:
    """Teams of a manager and 9 reps, one device each, plus an admin; tokens minted."""
    from server.accounts import create_team, create_user, utcnow
    from server.auth import TokenSigner, hash_password
    from server.db import make_engine, make_session_factory
    from server.migrate import upgrade
    from server.models import Device

    upgrade(db_url)
    engine = make_engine(db_url)
    signer = TokenSigner(TEST_SECRET, 6 * 3600)
    people: list[Person] = []
    try:
        with make_session_factory(engine)() as session:
            pw = hash_password(PASSWORD)
            now = utcnow()
            for n in range(devices - 1):
                team, k = divmod(n, TEAM_SIZE)
                if k == 0:
                    create_team(session, f"Team {team}", team_id=f"team-{team}")
                role = "manager" if k == 0 else "rep"
                uid = f"u-{team}-{k}"
                create_user(
                    session,
                    username=f"user{team}-{k}",
                    password=PASSWORD,
                    password_hash=pw,
                    role=role,
                    team_id=f"team-{team}",
                    user_id=uid,
                )
                people.append(Person(uid, role, team, f"dev-{team}-{k}"))
            create_user(
                session, username="admin", password=PASSWORD, password_hash=pw, role="admin",
                user_id="u-admin",
            )  # fmt: skip
            people.append(Person("u-admin", "admin", -1, "dev-admin"))
            session.flush()
            for p in people:
                session.add(Device(id=p.device_id, user_id=p.user_id, created_at=now))
            session.commit()
    finally:
        engine.dispose()
    for p in people:
        p.token = signer.issue(p.user_id, p.device_id)
    return people


# ---- a lean HTTP/1.1 client ------------------------------------------------------------


class HttpError(OSError):
    """A connection that broke mid-request (a restarted instance, a refused connect)."""


async def _response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, keep-alive) of one HTTP/1.1 response."""
    status_line = await reader.readline()
    if not status_line:
        raise HttpError("connection closed")
    status = int(status_line.split(b" ", 2)[1])
    length, chunked, keep = 0, False, True
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding" and "chunked" in value:
            chunked = True
        elif name == "connection" and value == "close":
            keep = False
    if not chunked:
        return status, await reader.readexactly(length), keep
    body = b""
    while True:
        size = int((await reader.readline()).strip() or b"0", 16)
        chunk = await reader.readexactly(size + 2)
        if size == 0:
            return status, body, keep
        body += chunk[:-2]


class RawHttp:
    """Keep-alive JSON POSTs to one port, at most ``size`` connections at once."""

    def __init__(self, port: int, size: int = 40) -> None:
        self.port = port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.slots = asyncio.Semaphore(size)

    async def post(self, path: str, body: Any, token: str = "") -> tuple[int, Any]:
        data = json.dumps(body, separators=(",", ":")).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n"
            + (f"Authorization: Bearer {token}\r\n" if token else "")
            + "\r\n"
        ).encode()
        async with self.slots:
            if self.idle:
                conn = self.idle.pop()
            else:
                try:
                    conn = await asyncio.open_connection("127.0.0.1", self.port)
                except OSError as exc:
                    raise HttpError(str(exc)) from exc
            reader, writer = conn
            try:
                writer.write(head + data)
                status, raw, keep = await _response(reader)
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
                writer.close()
                raise HttpError(type(exc).__name__) from exc
            if keep:
                self.idle.append(conn)
            else:
                writer.close()
        return status, (json.loads(raw) if raw else None)

    async def aclose(self) -> None:
        for _reader, writer in self.idle:
            writer.close()
        self.idle.clear()


# ---- a simulated device ----------------------------------------------------------------


@dataclass(eq=False)
class Sim:
    person: Person
    home: int  # index of the instance its stream prefers
    checkpoint: str | None = None
    records: dict[str, int] = field(default_factory=dict)
    pokes: int = 0
    pulls: int = 0
    pulling: bool = False
    connects: int = 0
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    wanted: asyncio.Event = field(default_factory=asyncio.Event)
    poke_at: dict[str, float] = field(default_factory=dict)


class Fleet:
    def __init__(self, ports: list[int], people: list[Person], homes: list[int]) -> None:
        self.ports = ports
        self.sims = [Sim(p, home) for p, home in zip(people, homes, strict=True)]
        self.http = [RawHttp(port) for port in ports]
        #: record id -> push-sent time (and the writer's team), for the latency phase.
        self.watch: dict[str, float] = {}
        self.watch_team: dict[str, int] = {}
        self.acked: dict[str, float] = {}
        self.seen: dict[str, float] = {}
        self.poked: dict[str, float] = {}
        self.errors: dict[str, int] = {}
        self.tasks: list[asyncio.Task[None]] = []
        self.stopping = False
        #: Teams whose writes the latency phase times (their managers are here, their
        #: reps — the writers — in the crowd) and teams the missed phase writes into.
        self.latency_teams: list[int] = []
        self.missed_teams: list[int] = []
        self.writers: list[Person] = []

    def note(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1

    # -- the event stream, on a raw connection -----------------------------------------
    async def stream(self, sim: Sim) -> None:
        attempt = 0
        while not self.stopping:
            index = (sim.home + attempt) % len(self.ports)
            try:
                await self._stream_once(sim, index)
                attempt = 0
            except (OSError, asyncio.IncompleteReadError, ValueError):
                attempt += 1
            sim.connected.clear()
            if not self.stopping:
                # Like the SDK (client_sdk/_live.py): full jitter, doubling from 1 s, so a
                # restarted instance's devices do not all come back in the same instant.
                ceiling = min(30.0, 2.0 ** min(attempt, 5))
                await asyncio.sleep(random.uniform(0.5, max(1.0, ceiling)))

    async def _stream_once(self, sim: Sim, index: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.ports[index])
        try:
            writer.write(
                (
                    "GET /v1/sync/events HTTP/1.1\r\nHost: bench\r\n"
                    f"Authorization: Bearer {sim.person.token}\r\n"
                    "Accept: text/event-stream\r\n\r\n"
                ).encode()
            )
            await writer.drain()
            status = await reader.readline()
            if b" 200 " not in status:
                self.note(f"stream status {status[9:12].decode(errors='replace')}")
                raise ValueError("refused")
            while (await reader.readline()) not in (b"\r\n", b""):
                pass
            sim.connects += 1
            sim.connected.set()
            buffer = b""
            while True:
                size_line = await reader.readline()
                if not size_line:
                    return
                size = int(size_line.strip() or b"0", 16)
                if size == 0:
                    return
                buffer += await reader.readexactly(size + 2)
                buffer = buffer[:-2] if buffer.endswith(b"\r\n") else buffer
                while b"\n\n" in buffer:
                    raw, buffer = buffer.split(b"\n\n", 1)
                    self._event(sim, raw.decode())
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _event(self, sim: Sim, raw: str) -> None:
        name, data = "message", ""
        for line in raw.split("\n"):
            key, _, value = line.partition(":")
            if key == "event":
                name = value.strip()
            elif key == "data":
                data += value.strip()
        if name not in ("ready", "changes") or not data:
            return
        checkpoint = json.loads(data).get("checkpoint")
        if checkpoint != sim.checkpoint:
            if name == "changes":
                sim.pokes += 1
                if sim.person.role == "manager" and self.watch:
                    now = time.monotonic()
                    for rid, team in list(self.watch_team.items()):
                        if team == sim.person.team and rid not in self.poked:
                            self.poked[rid] = now
            sim.wanted.set()

    # -- pulling when poked ------------------------------------------------------------
    async def puller(self, sim: Sim) -> None:
        while not self.stopping:
            await sim.wanted.wait()
            sim.wanted.clear()
            sim.pulling = True
            try:
                await self.pull(sim)
            finally:
                sim.pulling = False

    async def pull(self, sim: Sim) -> None:
        attempt = 0
        while not self.stopping:
            client = self.http[(sim.home + attempt) % len(self.http)]
            body = {
                "device_id": sim.person.device_id,
                "schema_version": 1,
                "checkpoint": sim.checkpoint,
                "limit": 2000,
            }
            try:
                status, page = await client.post("/v1/sync/pull", body, sim.person.token)
            except HttpError:
                attempt += 1
                await asyncio.sleep(0.1)
                continue
            if status != 200:
                self.note(f"pull {status}")
                attempt += 1
                await asyncio.sleep(0.1)
                continue
            sim.pulls += 1
            now = time.monotonic()
            for change in page["changes"]:
                rid = change["record_id"]
                sim.records[rid] = change["version"]
                if rid in self.watch and sim.person.role == "manager":
                    self.seen.setdefault(rid, now)
            sim.checkpoint = page["checkpoint"]
            if not page["has_more"]:
                return

    # -- writing -----------------------------------------------------------------------
    async def push(self, person: Person, index: int, mutations: list[dict[str, Any]]) -> int:
        """Push (retrying, failing over to the other instance) until answered."""
        body = {"device_id": person.device_id, "schema_version": 1, "mutations": mutations}
        attempt = 0
        while True:
            client = self.http[(index + attempt) % len(self.http)]
            try:
                status, answer = await client.post("/v1/sync/push", body, person.token)
                if status == 200:
                    results = answer["results"]
                    return sum(r["status"] in ("applied", "merged", "duplicate") for r in results)
                self.note(f"push {status}")
            except HttpError:
                self.note("push unreachable")
            attempt += 1
            await asyncio.sleep(0.05)

    def start(self) -> None:
        for sim in self.sims:
            self.tasks.append(asyncio.create_task(self.stream(sim)))
            self.tasks.append(asyncio.create_task(self.puller(sim)))

    async def stop(self) -> None:
        self.stopping = True
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for client in self.http:
            await client.aclose()

    def stats(self) -> dict[str, Any]:
        return {
            "pokes": {s.person.device_id: s.pokes for s in self.sims},
            "connects": sum(s.connects for s in self.sims),
            "errors": self.errors,
        }


def mutation(clock: HybridLogicalClock, rid: str, name: str) -> dict[str, Any]:
    return {
        "id": f"m-{uuid.uuid4().hex}",
        "collection": "customers",
        "record_id": rid,
        "op": "upsert",
        "fields": {"name": name, "status": "potential"},
        "hlc": clock.now().encode(),
    }


def rss_kb(pid: int | None) -> int:
    if pid is None:
        return 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def load_avg() -> float:
    return round(os.getloadavg()[0], 2)


# ---- phases ----------------------------------------------------------------------------


async def all_connected(fleet: Fleet, timeout_s: float) -> float:
    started = time.monotonic()
    await asyncio.wait_for(
        asyncio.gather(*(s.connected.wait() for s in fleet.sims)), timeout=timeout_s
    )
    return time.monotonic() - started


async def settled(fleet: Fleet, timeout_s: float) -> float:
    """Wait until every device has made its first sync and none is pulling."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if all(s.pulls and not s.pulling and not s.wanted.is_set() for s in fleet.sims):
            break
        await asyncio.sleep(0.1)
    return time.monotonic() - started


class EchoProbe:
    """The ceiling: one device's stream on the bare echo process (``--echo``); a POST
    there sends an event on it, and the device answers it with one more request."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.http = RawHttp(port, size=4)
        self.sent: dict[int, float] = {}
        self.evented: dict[int, float] = {}
        self.done: dict[int, float] = {}
        self.connected = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.pulls: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(b"GET /events/probe HTTP/1.1\r\nHost: bench\r\n\r\n")
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        self.connected.set()
        buffer = b""
        try:
            while True:
                size = int((await reader.readline()).strip() or b"0", 16)
                if size == 0:
                    return
                buffer += (await reader.readexactly(size + 2))[:-2]
                while b"\n\n" in buffer:
                    raw, buffer = buffer.split(b"\n\n", 1)
                    data = raw.decode().rpartition("data:")[2]
                    n = int(json.loads(data)["checkpoint"][1:])
                    if n in self.sent and n not in self.evented:
                        self.evented[n] = time.monotonic()
                        pull = asyncio.create_task(self._pull(n))
                        self.pulls.add(pull)
                        pull.add_done_callback(self.pulls.discard)
        finally:
            writer.close()

    async def _pull(self, n: int) -> None:
        await self.http.post("/pull/probe", {"checkpoint": n})
        self.done[n] = time.monotonic()

    async def sample(self, n: int) -> None:
        self.sent[n] = time.monotonic()
        await self.http.post("/write/probe", {"n": n})

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        await self.http.aclose()


class CommitProbe:
    """The other floor: one durable write — ``INSERT`` of a row and ``COMMIT`` (the WAL
    flushed) — on the same PostgreSQL, timed between the samples. Every write path that
    must survive a crash waits for one; on a machine shared with other writers its tail
    is the database's, not ours."""

    def __init__(self, db_url: str) -> None:
        self.url = db_url.replace("postgresql+psycopg://", "postgresql://", 1)
        self.conn: Any = None
        self.times: list[float] = []

    async def start(self) -> None:
        import psycopg

        self.conn = await psycopg.AsyncConnection.connect(self.url)
        await self.conn.execute("CREATE TABLE bench_commit_probe (id serial PRIMARY KEY, n int)")
        await self.conn.commit()

    async def sample(self, n: int) -> None:
        started = time.monotonic()
        await self.conn.execute("INSERT INTO bench_commit_probe (n) VALUES (%s)", (n,))
        await self.conn.commit()
        self.times.append((time.monotonic() - started) * 1000)

    async def stop(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                await self.conn.execute("DROP TABLE bench_commit_probe")
                await self.conn.commit()
            await self.conn.close()


def _spread(values: list[float]) -> dict[str, float | None]:
    return {
        "p50": round(percentile(values, 0.5), 1),
        "p99": round(percentile(values, 0.99), 1),
        "max": round(max(values), 1) if values else None,
    }


async def latency_phase(
    fleet: Fleet,
    samples: int,
    rate_hz: float,
    echo: EchoProbe | None,
    commit: CommitProbe | None = None,
) -> dict[str, Any]:
    managers = {s.person.team: s for s in fleet.sims if s.person.role == "manager"}
    teams = set(fleet.latency_teams)
    reps = [p for p in fleet.writers if p.team in teams]
    rng = random.Random(7)
    clock = HybridLogicalClock("bench-latency")
    pending: list[asyncio.Task[None]] = []
    if echo is not None:
        await asyncio.wait_for(echo.connected.wait(), 10)

    async def write(person: Person, target: int, rid: str, n: int) -> None:
        await fleet.push(person, target, [mutation(clock, rid, f"latency {n}")])
        fleet.acked[rid] = time.monotonic()

    # The run's first push is slow (seconds, on whichever instance gets it; the other
    # instance's first push is not): a one-off of the fresh database. An installation
    # has done it long before; time it apart and keep it out of the samples.
    first_push_ms = []
    for target in range(len(fleet.ports)):
        started = time.monotonic()
        await fleet.push(reps[target], target, [mutation(clock, f"warm-{target}", "warm-up")])
        first_push_ms.append(round((time.monotonic() - started) * 1000))
    await asyncio.sleep(2)
    load_before = load_avg()
    for n in range(samples):
        rep = rng.choice(reps)
        manager = managers[rep.team]
        target = 1 - manager.home  # written on the instance the manager does NOT stream from
        rid = f"lat-{n}"
        fleet.watch_team[rid] = rep.team
        fleet.watch[rid] = time.monotonic()
        pending.append(asyncio.create_task(write(rep, target, rid, n)))
        await asyncio.sleep(0.5 / rate_hz)
        if echo is not None:  # the ceiling, half-way between two samples
            pending.append(asyncio.create_task(echo.sample(n)))
        await asyncio.sleep(0.25 / rate_hz)
        if commit is not None:  # and the durable-commit floor, a quarter later
            pending.append(asyncio.create_task(commit.sample(n)))
        await asyncio.sleep(0.25 / rate_hz)
    await asyncio.gather(*pending)
    deadline = time.monotonic() + 10
    while len(fleet.seen) < samples and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    delivered = [(fleet.seen[r] - t) * 1000 for r, t in fleet.watch.items() if r in fleet.seen]
    poked = [(fleet.poked[r] - t) * 1000 for r, t in fleet.watch.items() if r in fleet.poked]
    acked = [(fleet.acked[r] - t) * 1000 for r, t in fleet.watch.items() if r in fleet.acked]
    pulled = [(fleet.seen[r] - fleet.poked[r]) * 1000 for r in fleet.seen if r in fleet.poked]
    phase_start = min(fleet.watch.values(), default=0.0)
    slow = sorted(
        (
            round(t - phase_start, 2),
            round((fleet.seen[r] - t) * 1000),
            round((fleet.acked.get(r, t) - t) * 1000),
            round((fleet.poked.get(r, t) - t) * 1000),
        )
        for r, t in fleet.watch.items()
        if r in fleet.seen and (fleet.seen[r] - t) * 1000 > 150
    )
    echo_slow = (
        sorted(
            (round(t - phase_start, 2), round((echo.done[n] - t) * 1000))
            for n, t in echo.sent.items()
            if n in echo.done and (echo.done[n] - t) * 1000 > 5
        )
        if echo is not None
        else []
    )
    fleet.watch.clear()
    fleet.watch_team.clear()
    out: dict[str, Any] = {
        "samples": samples,
        "rate_per_s": rate_hz,
        "load_avg_1m": [load_before, load_avg()],
        "first_push_after_start_ms": first_push_ms,
        "delivered": len(delivered),
        "write_to_other_device_ms": _spread(delivered),
        "write_to_poke_ms": _spread(poked),
        "write_to_push_answered_ms": _spread(acked),
        "poke_to_device_has_it_ms": _spread(pulled),
        #: Samples over 150 ms: (s into the phase, delivered, push answered, poked) ms —
        #: and the echo samples over 5 ms (s, ms): do the slow ones come together?
        "slow_samples": slow,
        "slow_echo_samples": echo_slow,
    }
    if echo is not None:
        ceiling = [(echo.done[n] - t) * 1000 for n, t in echo.sent.items() if n in echo.done]
        evented = [(echo.evented[n] - t) * 1000 for n, t in echo.sent.items() if n in echo.evented]
        out["ceiling_bare_sse_echo_ms"] = {**_spread(ceiling), "event_alone": _spread(evented)}
        base = out["ceiling_bare_sse_echo_ms"]
        if commit is not None:
            out["floor_postgresql_commit_ms"] = _spread(commit.times)
        out["ratio_to_ceiling"] = {
            q: round(out["write_to_other_device_ms"][q] / base[q], 1) if base[q] else None
            for q in ("p50", "p99")
        }
    return out


async def missed_phase(
    fleet: Fleet,
    crowd: Crowd | None,
    procs: list[ServerProcess],
    db_url: str,
    changes: int,
    restarts: int,
) -> dict[str, Any]:
    teams = list(fleet.missed_teams)
    writers = [s.person for s in fleet.sims if s.person.role == "rep" and s.person.team in teams]
    in_scope = {s for s in fleet.sims if s.person.team in teams or s.person.role == "admin"}
    outside = [s for s in fleet.sims if s not in in_scope]
    crowd_before = await crowd.stats() if crowd is not None else None
    pokes_outside_before = sum(s.pokes for s in outside)
    connects_before = sum(s.connects for s in fleet.sims)
    batch = 100
    batches = changes // batch
    queue: asyncio.Queue[int] = asyncio.Queue()
    for b in range(batches):
        queue.put_nowait(b)
    rng = random.Random(11)
    done_writing = asyncio.Event()
    restarted: list[float] = []

    async def writer(w: int) -> None:
        clock = HybridLogicalClock(f"bench-w{w}")
        while True:
            try:
                b = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            person = rng.choice(writers)
            # Half new records, half updates of earlier ones.
            muts = [
                mutation(
                    clock,
                    f"mc-{person.user_id}-{rng.randrange(b * 50 + 50)}"
                    if k % 2
                    else f"mc-{person.user_id}-n{b}-{k}",
                    f"change {b}/{k}",
                )
                for k in range(batch)
            ]
            await fleet.push(person, w % len(fleet.ports), muts)

    failed_starts: list[str] = []

    async def restarter() -> None:
        for n in range(restarts):
            await asyncio.sleep(2.0)
            proc = procs[n % len(procs)]
            await asyncio.to_thread(proc.stop)
            while True:  # a start can time out on this loaded machine: try again
                try:
                    await asyncio.to_thread(proc.start)
                    break
                except RuntimeError as exc:
                    failed_starts.append(str(exc))
            restarted.append(time.monotonic())

    started = time.monotonic()
    load_before = load_avg()
    restart_task = asyncio.create_task(restarter())
    await asyncio.gather(*(writer(w) for w in range(4)))
    done_writing.set()
    written_at = time.monotonic()
    await restart_task
    restarts_done_at = time.monotonic()
    truth = await asyncio.to_thread(_truth, db_url, teams)

    by_owner: dict[str, list[tuple[str, int]]] = {}
    for rid, (owner, version) in truth.items():
        by_owner.setdefault(owner, []).append((rid, version))
    everything = [(rid, version) for rid, (_owner, version) in truth.items()]
    expected: list[tuple[Sim, list[tuple[str, int]]]] = []
    for sim in in_scope:
        p = sim.person
        if p.role == "admin":
            expected.append((sim, everything))
        elif p.role == "manager":
            team = [pair for o, pairs in by_owner.items() if o.split("-")[1] == str(p.team)
                    for pair in pairs]  # fmt: skip
            expected.append((sim, team))
        else:
            expected.append((sim, by_owner.get(p.user_id, [])))

    def missing() -> int:
        return sum(
            sim.records.get(rid, 0) < version for sim, pairs in expected for rid, version in pairs
        )

    def lagging() -> dict[str, Any]:
        """Who is still behind, and in what state (the catch-up's profile)."""
        behind = [
            sim
            for sim, pairs in expected
            if any(sim.records.get(rid, 0) < version for rid, version in pairs)
        ]
        return {
            "devices": len(behind),
            "connected": sum(s.connected.is_set() for s in behind),
            "pulling": sum(s.pulling for s in behind),
            "roles": sorted({s.person.role for s in behind}),
        }

    catch_up: list[tuple[float, int, dict[str, Any]]] = []
    settle_from = max(written_at, restarts_done_at)
    deadline = time.monotonic() + 120
    left = missing()
    while left and time.monotonic() < deadline:
        if not catch_up or time.monotonic() - settle_from - catch_up[-1][0] >= 2:
            catch_up.append((round(time.monotonic() - settle_from, 1), left, lagging()))
        await asyncio.sleep(0.5)
        left = missing()
    converged_at = time.monotonic()
    crowd_after = await crowd.stats() if crowd is not None else None
    crowd_pokes = crowd_reconnects = 0
    if crowd_before is not None and crowd_after is not None:
        crowd_pokes = sum(crowd_after["pokes"].values()) - sum(crowd_before["pokes"].values())
        crowd_reconnects = crowd_after["connects"] - crowd_before["connects"]
    return {
        "changes": batches * batch,
        "load_avg_1m": [load_before, load_avg()],
        "distinct_records": len(truth),
        "restarts": len(restarted),
        "restarts_during_writes": sum(t <= written_at for t in restarted),
        "writing_s": round(written_at - started, 1),
        "mutations_per_s_while_restarting": round(batches * batch / (written_at - started)),
        "in_scope_devices": len(in_scope),
        "missed": left,
        #: (s after the last write and restart, (device, record) pairs behind, who)
        "catch_up": catch_up,
        "converged_s_after_last_write_and_restart": round(
            converged_at - max(written_at, restarts_done_at), 2
        ),
        "out_of_scope_devices": len(outside) + (len(crowd_after["pokes"]) if crowd_after else 0),
        "pokes_to_out_of_scope_devices": sum(s.pokes for s in outside)
        - pokes_outside_before
        + crowd_pokes,
        "reconnects": sum(s.connects for s in fleet.sims) - connects_before + crowd_reconnects,
        "failed_starts": failed_starts,
    }


def _truth(db_url: str, teams: list[int]) -> dict[str, tuple[str, int]]:
    from sqlalchemy import text

    from server.db import make_engine

    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT record_id, owner_id, version FROM records "
                    "WHERE collection = 'customers' AND record_id LIKE 'mc-%'"
                )
            ).all()
    finally:
        engine.dispose()
    return {str(r[0]): (str(r[1]), int(r[2])) for r in rows}


async def push_phase(ports: list[int], people: list[Person], seconds: float) -> dict[str, Any]:
    reps = [p for p in people if p.role == "rep"]

    async def run(writers: int, instances: int) -> float:
        clients = [
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60)
            for port in ports[:instances]
        ]
        count = 0
        stop_at = time.monotonic() + seconds

        async def one(w: int) -> None:
            nonlocal count
            person = reps[w]
            clock = HybridLogicalClock(f"push-{writers}-{w}")
            client = clients[w % instances]
            n = 0
            while time.monotonic() < stop_at:
                muts = [
                    mutation(clock, f"ps-{writers}-{w}-{n}-{k}", f"push {n}/{k}")
                    for k in range(100)
                ]
                n += 1
                response = await client.post(
                    "/v1/sync/push",
                    json={"device_id": person.device_id, "schema_version": 1, "mutations": muts},
                    headers={"Authorization": f"Bearer {person.token}"},
                )
                response.raise_for_status()
                count += sum(r["status"] == "applied" for r in response.json()["results"])

        started = time.monotonic()
        await asyncio.gather(*(one(w) for w in range(writers)))
        elapsed = time.monotonic() - started
        for client in clients:
            await client.aclose()
        return count / elapsed

    one_writer = await run(1, 1)
    four_writers = await run(4, 2)
    return {
        "seconds_each": seconds,
        "batch": 100,
        "one_writer_one_instance_per_s": round(one_writer),
        "four_writers_two_instances_per_s": round(four_writers),
        "ratio": round(four_writers / one_writer, 2) if one_writer else None,
    }


# ---- the run ---------------------------------------------------------------------------


# ---- the crowd and the echo: processes of their own ------------------------------------


class Crowd:
    """The devices nobody times, in a subprocess (``--crowd SPEC``) of their own."""

    def __init__(self) -> None:
        self.proc: asyncio.subprocess.Process | None = None
        self.ready: dict[str, Any] = {}

    async def start(self, spec: Path) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.live_bench", "--crowd", str(spec),
            cwd=REPO, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            limit=2**24,
        )  # fmt: skip

    async def wait_ready(self) -> dict[str, Any]:
        self.ready = await self._line()
        return self.ready

    async def _line(self) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        line = await self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the crowd process ended")
        answer: dict[str, Any] = json.loads(line)
        return answer

    async def stats(self) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(b"stats\n")
        await self.proc.stdin.drain()
        return await self._line()

    async def stop(self) -> dict[str, Any]:
        stats = await self.stats()
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(b"stop\n")
        await self.proc.stdin.drain()
        try:
            await asyncio.wait_for(self.proc.wait(), 30)
        except TimeoutError:
            self.proc.kill()
        return stats

    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None


async def crowd_main(spec_path: Path) -> None:
    spec = json.loads(spec_path.read_text())
    people = [Person(**p) for p in spec["people"]]
    fleet = Fleet(spec["ports"], people, spec["homes"])
    fleet.start()
    connect_s = await all_connected(fleet, 600)
    settle_s = await settled(fleet, 600)
    print(json.dumps({"connect_s": connect_s, "settle_s": settle_s}), flush=True)
    loop = asyncio.get_running_loop()
    while True:
        command = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
        if command == "stats":
            print(json.dumps(fleet.stats()), flush=True)
        else:  # "stop", or the parent went away
            break
    await fleet.stop()


def _chunk(text_: str) -> bytes:
    data = text_.encode()
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


async def echo_main(port: int) -> None:
    """The ceiling's server: SSE out, JSON in, no framework, no database."""
    streams: dict[str, list[asyncio.StreamWriter]] = {}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                method, path, _ = line.decode().split(" ", 2)
                length = 0
                while True:
                    header = await reader.readline()
                    if header in (b"\r\n", b""):
                        break
                    name, _, value = header.decode("latin-1").partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                body = await reader.readexactly(length) if length else b""
                kind, _, key = path.strip("/").partition("/")
                if method == "GET" and kind == "events":
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                        b"Transfer-Encoding: chunked\r\n\r\n"
                    )
                    streams.setdefault(key, []).append(writer)
                    await reader.read()  # held until the device goes
                    streams[key].remove(writer)
                    return
                answer = json.dumps({"changes": [], "has_more": False}).encode()
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(answer)}\r\n\r\n".encode()
                    + answer
                )
                if kind == "write":
                    n = json.loads(body)["n"]
                    event = f'event: changes\ndata: {{"checkpoint":"e{n}"}}\n\n'
                    for stream in streams.get(key, ()):
                        stream.write(_chunk(event))
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


async def start_echo(port: int) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.live_bench", "--echo", str(port),
        cwd=REPO, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    await asyncio.wait_for(proc.stdout.readline(), 30)
    return proc


# ---- the run ---------------------------------------------------------------------------


def split(people: list[Person], missed_n: int, latency_n: int) -> dict[str, Any]:
    """Which devices this process holds (measured ones) and which the crowd holds."""
    teams = sorted({p.team for p in people if p.team >= 0})
    missed = teams[:missed_n]
    latency = teams[missed_n : missed_n + latency_n]
    homes = {p.device_id: i % 2 for i, p in enumerate(people)}
    mine = [
        p
        for p in people
        if p.team in missed or p.role == "admin" or (p.team in latency and p.role == "manager")
    ]
    held = {p.device_id for p in mine}
    crowd = [p for p in people if p.device_id not in held]
    return {
        "missed": missed,
        "latency": latency,
        "homes": homes,
        "mine": mine,
        "crowd": crowd,
        "writers": [p for p in people if p.team in latency and p.role == "rep"],
    }


async def bench(db_url: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    started = time.time()
    people = await asyncio.to_thread(prepare, db_url, args.devices)
    env = {**SERVER_ENV, "FIELDSYNC_LIVE_MAX_STREAMS": str(args.devices + 100)}
    procs = [ServerProcess(db_url, env=env, migrate=False, startup_timeout_s=120) for _ in range(2)]
    for proc in procs:
        await asyncio.to_thread(proc.start)
    ports = [p.port for p in procs]
    teams = (args.devices - 1) // TEAM_SIZE
    plan = split(people, min(10, teams // 2), min(20, teams - min(10, teams // 2)))
    out: dict[str, Any] = {
        "devices": len(people),
        "instances": 2,
        "database": "postgresql",
        "cpu_count": os.cpu_count(),
        "load_avg_1m_before": load_avg(),
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
        "simulator": {
            "measuring_process_devices": len(plan["mine"]),
            "crowd_process_devices": len(plan["crowd"]),
            "http_client": "raw asyncio HTTP/1.1 keep-alive (bench.live_bench.RawHttp)",
        },
    }
    crowd: Crowd | None = None
    echo_proc: asyncio.subprocess.Process | None = None
    echo: EchoProbe | None = None
    try:
        await asyncio.sleep(1)
        rss_idle = [rss_kb(p.pid) for p in procs]
        connect_started = time.monotonic()
        if plan["crowd"]:
            spec = work / "crowd.json"
            spec.write_text(
                json.dumps(
                    {
                        "ports": ports,
                        "people": [vars(p) for p in plan["crowd"]],
                        "homes": [plan["homes"][p.device_id] for p in plan["crowd"]],
                    }
                )
            )
            crowd = Crowd()
            await crowd.start(spec)
        fleet = Fleet(ports, plan["mine"], [plan["homes"][p.device_id] for p in plan["mine"]])
        fleet.latency_teams, fleet.missed_teams = plan["latency"], plan["missed"]
        fleet.writers = plan["writers"]
        fleet.start()
        await all_connected(fleet, 600)
        await settled(fleet, 600)
        if crowd is not None:
            ready = await crowd.wait_ready()
            out["simulator"]["crowd_connect_s"] = round(ready["connect_s"], 1)
        out["connect_and_first_sync_all_s"] = round(time.monotonic() - connect_started, 1)
        await asyncio.sleep(3)
        rss_streams = [rss_kb(p.pid) for p in procs]
        out["memory"] = {
            "rss_kb_without_streams": rss_idle,
            "rss_kb_with_streams": rss_streams,
            "kb_per_idle_device": round((sum(rss_streams) - sum(rss_idle)) / len(people), 1),
        }
        print("memory", out["memory"], flush=True)
        if "latency" in args.phases:
            echo_port = free_port()
            echo_proc = await start_echo(echo_port)
            echo = EchoProbe(echo_port)
            echo.start()
            commit = CommitProbe(db_url)
            await commit.start()
            try:
                out["latency"] = await latency_phase(fleet, args.samples, args.rate, echo, commit)
            finally:
                await commit.stop()
            print("latency", out["latency"], flush=True)
        if "missed" in args.phases:
            await settled(fleet, 60)
            out["missed"] = await missed_phase(
                fleet, crowd, procs, db_url, args.changes, args.restarts
            )
            print("missed", out["missed"], flush=True)
        out["stream_errors"] = fleet.errors
        await fleet.stop()
        if crowd is not None:
            out["crowd_stream_errors"] = (await crowd.stop())["errors"]
            crowd = None
        if "push" in args.phases:
            out["push"] = await push_phase(ports, people, args.push_seconds)
            print("push", out["push"], flush=True)
    finally:
        if echo is not None:
            await echo.stop()
        if echo_proc is not None:
            echo_proc.terminate()
            await echo_proc.wait()
        if crowd is not None and crowd.proc is not None:
            crowd.proc.kill()
            await crowd.proc.wait()
        for proc in procs:
            await asyncio.to_thread(proc.stop)
    out["load_avg_1m_after"] = load_avg()
    out["aims"] = {
        "p50_ms": 50,
        "p99_ms": 150,
        "missed": 0,
        "push_ratio": 1.6,
        "push_per_s": 5000,
    }
    return out


def _fast_loop() -> None:
    """uvloop where installed, like the servers (uvicorn picks it too)."""
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run (small sizes)")
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--rate", type=float, default=10.0, help="latency writes per second")
    parser.add_argument("--changes", type=int, default=100_000)
    parser.add_argument("--restarts", type=int, default=10)
    parser.add_argument("--push-seconds", type=float, default=15.0)
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--crowd", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--echo", type=int, help=argparse.SUPPRESS)
    parser.add_argument(
        "--phases",
        default="latency,missed",
        help="comma-separated subset of latency,missed,push (memory is always measured)",
    )
    parser.add_argument(
        "--merge", action="store_true", help="keep the other phases' figures of --output"
    )
    args = parser.parse_args()
    if args.crowd is not None:
        _fast_loop()
        asyncio.run(crowd_main(args.crowd))
        return
    if args.echo is not None:
        _fast_loop()
        asyncio.run(echo_main(args.echo))
        return
    args.phases = set(args.phases.split(","))
    if args.quick:
        args.devices, args.samples, args.changes = 101, 40, 5_000
        args.restarts, args.push_seconds = 2, 4.0
    output = args.output or (RESULTS / ("quick" if args.quick else "") / "live.json")
    with contextlib.ExitStack() as stack:
        import tempfile

        work = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        db_url = stack.enter_context(database("postgres", work))
        _fast_loop()
        result = asyncio.run(bench(db_url, args, work))
    output.parent.mkdir(parents=True, exist_ok=True)
    if args.merge and output.exists():
        earlier = json.loads(output.read_text())
        kept = {k: v for k, v in earlier.items() if k in ("latency", "missed", "push")}
        result = {**kept, **result, "merged_from": earlier.get("when")}
    output.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
