"""Fleet and pull-scaling benchmark: many devices at once, and pulls among many records.

    .venv/bin/python -m bench.fleet_bench [--quick] [--devices 100] [--seconds 30]

1. **Fleet**: a real server (``python -m server serve --workers 2``) on a fresh
   PostgreSQL database; 100 SDK devices (50 reps x 2 phones, in-memory encrypted
   stores, one thread each) start together behind a barrier and loop "make 3 edits,
   sync" for a fixed time. Figures: completed syncs/s, p50/p99 sync latency, and the
   audit afterwards — every acknowledged write on the server exactly once (zero lost,
   zero duplicated). Ceilings measured in the same run: the request rate of
   ``GET /healthz`` at the same concurrency (the HTTP stack's own limit with 2 workers)
   and the latency of one device syncing alone (no contention).
2. **Pull scaling**: a rep's database of 50,000 and of 200,000 customers (written
   through the sync engine), 100 of them changed, then ``POST /v1/sync/pull`` from the
   checkpoint before the change: the median time to fetch those 100 changes. The
   ceiling is the same pull among 1,000 records; "cost follows the changes, not the
   data" means the three times are alike.

Writes ``bench/results/fleet.json``. ``--quick`` shrinks everything to a smoke run
(SQLite when no PostgreSQL is reachable).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from client_sdk import FAST_KDF, HttpTransport, Store, SyncClient, SyncConfig  # noqa: E402
from sync_protocol import CRM_SCHEMA, HybridLogicalClock, Mutation  # noqa: E402
from tests.support.server_proc import TEST_SECRET, free_port  # noqa: E402
from tests.support.simulator import SERVER_ENV  # noqa: E402

from .simulate import database  # noqa: E402

RESULTS = REPO / "bench" / "results" / "fleet.json"
PASSWORD = "fieldsync-demo"


def postgres_available() -> bool:
    try:
        import psycopg

        from .simulate import POSTGRES_ADMIN_URL

        with psycopg.connect(
            POSTGRES_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=3
        ):
            return True
    except Exception:
        return False


@contextlib.contextmanager
def serve(db_url: str, workers: int) -> Iterator[str]:
    """``python -m server serve --workers N`` on a free port; yields its URL."""
    port = free_port()
    env = {
        **os.environ,
        **SERVER_ENV,
        "FIELDSYNC_ENV": "test",
        "FIELDSYNC_SECRET_KEY": TEST_SECRET,
        "FIELDSYNC_DATABASE_URL": db_url,
    }
    cmd = [
        sys.executable,
        "-m",
        "server",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--database-url",
        db_url,
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[k]


# ---- the fleet -------------------------------------------------------------------------


def prepare_fleet_db(db_url: str, reps: int) -> list[str]:
    from server.accounts import create_user
    from server.auth import hash_password
    from server.db import make_engine, make_session_factory
    from server.demo import seed_demo
    from server.migrate import upgrade

    upgrade(db_url)
    engine = make_engine(db_url)
    names = []
    try:
        with make_session_factory(engine)() as session:
            seed_demo(session, customers=0)
            pw = hash_password(PASSWORD)
            for n in range(reps):
                name = f"fleet{n:03d}"
                create_user(
                    session,
                    username=name,
                    password=PASSWORD,
                    password_hash=pw,
                    team_id="team-east",
                    user_id=f"u-{name}",
                )
                names.append(name)
            session.commit()
    finally:
        engine.dispose()
    return names


class FleetDevice:
    def __init__(self, index: int, username: str, url: str) -> None:
        self.index = index
        self.username = username
        self.store = Store.open(None, f"fleet {index}", schema=CRM_SCHEMA, kdf=FAST_KDF)
        config = SyncConfig(max_attempts=8, backoff_initial_s=0.05, backoff_max_s=1.0)
        self.client = SyncClient(self.store, HttpTransport(url, timeout_s=120), config)
        self.created: list[str] = []
        self.lines: list[tuple[str, str]] = []
        self.latencies: list[float] = []
        self.errors: Counter[str] = Counter()
        self.rng = random.Random(index)

    def login(self) -> None:
        self.client.login(self.username, PASSWORD, device_name=f"fleet {self.index}")

    def edit(self, round_no: int) -> None:
        customers = self.store.collection("customers")
        rid = f"fc-{self.index}-{round_no}"
        customers.insert(
            {"name": f"fleet {self.index}/{round_no}", "status": "potential", "notes": rid},
            id=rid,
        )
        self.created.append(rid)
        for _ in range(2):
            target = self.rng.choice(customers.all())  # fresh view: it holds the last edit
            line = f"L{self.index}-{round_no}-{self.rng.randrange(10**9)}"
            notes = target.get("notes") or ""
            customers.update(target.id, {"notes": f"{notes}\n{line}" if notes else line})
            self.lines.append((target.id, line))

    def loop(self, barrier: threading.Barrier, until: float) -> None:
        barrier.wait()
        round_no = 0
        while time.monotonic() < until:
            round_no += 1
            self.edit(round_no)
            started = time.perf_counter()
            try:
                self.client.sync()
            except Exception as exc:
                self.errors[type(exc).__name__] += 1
                continue
            self.latencies.append(time.perf_counter() - started)


def healthz_ceiling(url: str, concurrency: int, seconds: float) -> dict[str, Any]:
    """Requests/s of GET /healthz with ``concurrency`` clients: the HTTP stack's limit."""
    stop = time.monotonic() + seconds
    counts = [0] * concurrency
    latencies: list[float] = []
    lock = threading.Lock()

    def hammer(i: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            local = []
            while time.monotonic() < stop:
                t = time.perf_counter()
                client.get("/healthz")
                local.append(time.perf_counter() - t)
                counts[i] += 1
            with lock:
                latencies.extend(local)

    started = time.monotonic()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(hammer, range(concurrency)))
    elapsed = time.monotonic() - started
    return {
        "requests_per_s": round(sum(counts) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 0.5) * 1000, 1),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
    }


def audit_fleet(db_url: str, devices: list[FleetDevice]) -> dict[str, Any]:
    """Zero lost and zero duplicated writes, read from the server's tables."""
    from sqlalchemy import text

    from server.db import make_engine

    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = {
                r.record_id: json.loads(r.data)
                for r in conn.execute(
                    text("SELECT record_id, data FROM records WHERE collection = 'customers'")
                )
            }
            per_mutation = Counter(
                json.loads(d)["mutation_id"]
                for (d,) in conn.execute(
                    text("SELECT details FROM audit_log WHERE action LIKE 'mutation.%'")
                )
            )
            applied = int(conn.execute(text("SELECT count(*) FROM applied_mutations")).scalar_one())
    finally:
        engine.dispose()
    lost_creates = [rid for d in devices for rid in d.created if rid not in rows]
    lost_lines = []
    duplicated_lines = []
    for d in devices:
        for rid, line in d.lines:
            lines = str(rows.get(rid, {}).get("notes", "")).split("\n")
            count = lines.count(line)
            if count == 0:
                lost_lines.append((rid, line))
            elif count > 1:
                duplicated_lines.append((rid, line))
    return {
        "acknowledged_creates": sum(len(d.created) for d in devices),
        "acknowledged_note_appends": sum(len(d.lines) for d in devices),
        "lost_creates": len(lost_creates),
        "lost_note_lines": len(lost_lines),
        "duplicated_note_lines": len(duplicated_lines),
        "mutations_applied_twice": sum(1 for n in per_mutation.values() if n > 1),
        "applied_mutations_rows": applied,
    }


def fleet(db_url: str, devices_n: int, seconds: float) -> dict[str, Any]:
    names = prepare_fleet_db(db_url, max(1, devices_n // 2))
    with serve(db_url, workers=2) as url:
        devices = [FleetDevice(i, names[i % len(names)], url) for i in range(devices_n)]
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda d: d.login(), devices))
        for d in devices:  # a first sync each, outside the measurement
            d.client.sync()

        alone = devices[0]
        solo: list[float] = []
        for r in range(10):
            alone.edit(10_000 + r)
            t = time.perf_counter()
            alone.client.sync()
            solo.append(time.perf_counter() - t)

        barrier = threading.Barrier(devices_n + 1)
        until = time.monotonic() + seconds + 1
        threads = [threading.Thread(target=d.loop, args=(barrier, until)) for d in devices]
        for t in threads:
            t.start()
        barrier.wait()
        started = time.monotonic()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started

        ceiling = healthz_ceiling(url, devices_n, min(10.0, seconds))
        for d in devices:  # heal: everyone's outbox drained
            for _ in range(5):
                try:
                    d.client.sync()
                    break
                except Exception:
                    time.sleep(0.5)
        pending = sum(d.store.status().pending_total for d in devices)
    latencies = [x for d in devices for x in d.latencies]
    errors: Counter[str] = Counter()
    for d in devices:
        errors.update(d.errors)
    audit = audit_fleet(db_url, devices)
    for d in devices:
        d.store.close()
    return {
        "devices": devices_n,
        "reps": len(names),
        "server_workers": 2,
        "seconds": round(elapsed, 1),
        "syncs": len(latencies),
        "syncs_per_s": round(len(latencies) / elapsed, 1),
        "sync_p50_ms": round(percentile(latencies, 0.5) * 1000, 1),
        "sync_p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
        "sync_errors": dict(errors),
        "pending_after_heal": pending,
        "ceiling_healthz": ceiling,
        "ceiling_single_device_sync_ms": round(statistics.median(solo) * 1000, 1),
        "audit": audit,
        "zero_lost_or_duplicated": pending == 0
        and audit["lost_creates"] == 0
        and audit["lost_note_lines"] == 0
        and audit["duplicated_note_lines"] == 0
        and audit["mutations_applied_twice"] == 0,
    }


# ---- pull scaling ----------------------------------------------------------------------


def prepare_pull_db(db_url: str) -> None:
    from server.db import make_engine, make_session_factory
    from server.demo import seed_demo
    from server.migrate import upgrade

    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        with make_session_factory(engine)() as session:
            seed_demo(session, customers=0)
            session.commit()
    finally:
        engine.dispose()


def seed_customers(db_url: str, start: int, stop: int) -> None:
    """Customers ``start..stop`` of rep1, written through the sync engine in batches."""
    from server.accounts import principal_for
    from server.db import make_engine, make_session_factory
    from server.models import User
    from server.repository import apply_push

    engine = make_engine(db_url)
    clock = HybridLogicalClock("bench-seed")
    try:
        with make_session_factory(engine)() as session:
            user = session.get(User, "u-rep1")
            assert user is not None
            principal = principal_for(session, user, "bench-seed")
        for first in range(start, stop, 2000):
            with make_session_factory(engine)() as session:
                mutations = [
                    Mutation(
                        id=f"seed-{i}",
                        collection="customers",
                        record_id=f"pc-{i:07d}",
                        op="upsert",
                        fields={
                            "name": f"客户 {i}",
                            "status": "potential",
                            "city": "杭州",
                            "phone": f"+86 138 {i % 10000:04d} {i // 10000:04d}",
                            "notes": "seeded for the pull-scaling benchmark",
                        },
                        hlc=clock.now().encode(),
                    )
                    for i in range(first, min(stop, first + 2000))
                ]
                apply_push(
                    session.connection(),
                    principal,
                    CRM_SCHEMA,
                    mutations,
                    now_ms=int(time.time() * 1000),
                    server_hlc=lambda: clock.now().encode(),
                )
                session.commit()
    finally:
        engine.dispose()


def pull_changes(url: str, db_url: str, count: int, repeats: int) -> dict[str, Any]:
    """Median seconds of a pull that returns the 100 changes made after a checkpoint."""
    device = "bench-puller"
    login = httpx.post(
        f"{url}/v1/auth/login",
        json={"username": "rep1", "password": PASSWORD, "device_id": device},
        timeout=60,
    )
    login.raise_for_status()
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    base = {"protocol": 1, "device_id": device, "schema_version": 1}
    rng = random.Random(count)
    clock = HybridLogicalClock("dev-benchpull")
    times = []
    with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
        for r in range(repeats + 1):
            checkpoint = head_checkpoint(db_url)  # what an up-to-date device holds
            ids = rng.sample(range(count), 100)
            mutations = [
                {
                    "id": f"chg-{count}-{r}-{i}",
                    "collection": "customers",
                    "record_id": f"pc-{i:07d}",
                    "op": "upsert",
                    "fields": {"city": f"city {count}-{r}"},
                    "hlc": clock.now().encode(),
                }
                for i in ids
            ]
            pushed = client.post("/v1/sync/push", json={**base, "mutations": mutations})
            pushed.raise_for_status()
            statuses = Counter(x["status"] for x in pushed.json()["results"])
            assert statuses == {"applied": 100}, statuses
            t = time.perf_counter()
            page = client.post(
                "/v1/sync/pull", json={**base, "checkpoint": checkpoint, "limit": 1000}
            )
            elapsed = time.perf_counter() - t
            page.raise_for_status()
            got = len(page.json()["changes"])
            if got != 100:
                body = page.json()
                vs = sorted(c["version"] for c in body["changes"])
                res = sorted(x["version"] for x in pushed.json()["results"])
                raise AssertionError(
                    f"got {got}: cp {checkpoint} pulled {vs[:3]}..{vs[-3:]} pushed {res[:3]}..{res[-3:]} next {body['checkpoint']}"
                )
            if r:  # the first round warms caches
                times.append(elapsed)
    return {
        "records": count,
        "changes": 100,
        "median_ms": round(statistics.median(times) * 1000, 2),
        "p90_ms": round(percentile(times, 0.9) * 1000, 2),
        "repeats": len(times),
    }


def head_checkpoint(db_url: str) -> str:
    """The checkpoint of a device that has pulled everything (the committed counter)."""
    from server.db import make_engine
    from server.repository.state import read_counter

    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            counter = read_counter(conn).counter
    finally:
        engine.dispose()
    return f"v1:{counter}"


def pull_scaling(kind: str, sizes: list[int], repeats: int, work: Path) -> list[dict[str, Any]]:
    """One database grown to each size in turn; the same server process measures each."""
    out = []
    with database(kind, work) as url:
        prepare_pull_db(url)
        with serve(url, workers=1) as server_url:
            have = 0
            for size in sorted(sizes):
                t = time.perf_counter()
                seed_customers(url, have, size)
                seeded = time.perf_counter() - t
                have = size
                result = pull_changes(server_url, url, size, repeats)
                result.update(db=kind, seed_seconds=round(seeded, 1))
                print(json.dumps(result), flush=True)
                out.append(result)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet_bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smoke run (seconds)")
    parser.add_argument("--devices", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--db", choices=("postgres", "sqlite"), default=None)
    parser.add_argument("--skip-fleet", action="store_true")
    parser.add_argument("--skip-pull", action="store_true")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    kind = args.db or ("postgres" if postgres_available() else "sqlite")
    if args.quick:
        devices, seconds, sizes, repeats = args.devices or 4, args.seconds or 1.0, [300, 1200], 2
    else:
        devices, seconds = args.devices or 100, args.seconds or 30.0
        sizes, repeats = [1000, 50_000, 200_000], 15
    results: dict[str, Any] = {
        "machine": {"cores": os.cpu_count(), "python": sys.version.split()[0]},
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "db": kind,
        "quick": args.quick,
    }
    with tempfile.TemporaryDirectory(prefix="fleet-bench-") as tmp:
        work = Path(tmp)
        if not args.skip_fleet:
            with database(kind, work) as url:
                results["fleet"] = fleet(url, devices, seconds)
            print(json.dumps(results["fleet"], indent=2), flush=True)
        if not args.skip_pull:
            results["pull_scaling"] = pull_scaling(kind, sizes, repeats, work)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    ok = results.get("fleet", {}).get("zero_lost_or_duplicated", True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
