"""Server throughput over real uvicorn processes on loopback, on SQLite and PostgreSQL,
beside a bare ceiling measured in the same run.

Setup, per database: push 20,000 customers in batches of 1,000 through the full merge
path (:func:`measure_push`), then 220 changes after a checkpoint. The bare ceiling
(:mod:`bench.ceiling_bench`: a minimal FastAPI + SQLite app serving the same customers
as stored JSON pages) runs as its own process beside them. Then 5 interleaved rounds
(ceiling, SQLite, PostgreSQL), each with an independent httpx client: a fresh device's
full pull in pages of 5,000 (compressed as the SDK asks — its own ``Accept-Encoding`` —
and uncompressed; JSON parsed as a real client must), the pull of the 220 changes
(median of 30), and 200 empty polls (p50, p99). Figures are medians of the rounds;
every round's figure and the load average are kept. Last, 4 concurrent writers,
counting acknowledged writes that were not stored. Figures go to
``bench/results/server.json`` and a table on stdout.

    python -m bench.server_bench [--quick] [--db sqlite|postgres|both] [--rounds N] [--output PATH]

The peer figures (Kinto 26.5 on PostgreSQL, same machine and data) are in issue 4.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from sync_protocol import HybridLogicalClock
from tests.support.server_proc import ServerProcess, create_user_direct, migrate

REPO = Path(__file__).resolve().parents[1]
PASSWORD = "bench-password-123"
PG_ADMIN = os.environ.get(
    "FIELDSYNC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def customer(i: int) -> dict[str, Any]:
    """~430 bytes of canonical JSON once stored (owner_id included)."""
    return {
        "name": f"客户 Customer {i:06d}",
        "company": f"上海浦东物流有限公司 Branch {i % 97}",
        "industry": "物流 Logistics",
        "phone": f"+86 21 {5000 + i % 4000} {1000 + i % 9000}",
        "mobile": f"+86 138 {1000 + i % 9000} {2000 + i % 7000}",
        "email": f"customer{i}@example.com",
        "address": f"上海市浦东新区张江路 {i % 999} 号 Building {i % 12}",
        "city": "上海",
        "source": "referral",
        "status": "potential",
        "tier": "mid",
        "tags": ["重点客户", "logistics"],
        "next_follow_up": "2026-12-01",
        "notes": "First contact at the Shanghai expo; wants a quote.",
    }


def distinct_customer(i: int) -> dict[str, Any]:
    """:func:`customer` with phone, mobile and e-mail unique up to 10^8 customers (the
    server refuses a second customer with the same number as a possible duplicate)."""
    return {
        **customer(i),
        "phone": f"+86 21 {i:08d}",
        "mobile": f"+86 139 {i:08d}",
        "email": f"customer{i}@example.com",
    }


class Device:
    def __init__(self, url: str, username: str, device_id: str) -> None:
        self.client = httpx.Client(base_url=url, timeout=120)
        self.device_id = device_id
        self.clock = HybridLogicalClock(device_id)
        r = self.client.post(
            "/v1/auth/login",
            json={"username": username, "password": PASSWORD, "device_id": device_id},
        )
        r.raise_for_status()
        self.client.headers["Authorization"] = f"Bearer {r.json()['access_token']}"

    def push(self, mutations: list[dict[str, Any]]) -> list[dict[str, Any]]:
        r = self.client.post(
            "/v1/sync/push",
            json={"device_id": self.device_id, "schema_version": 1, "mutations": mutations},
        )
        r.raise_for_status()
        results: list[dict[str, Any]] = r.json()["results"]
        return results

    def pull(
        self, checkpoint: str | None, limit: int = 5000, accept_encoding: str = "identity"
    ) -> dict[str, Any]:
        """One page, decoded and parsed as a real client must."""
        r = self.client.post(
            "/v1/sync/pull",
            json={
                "device_id": self.device_id,
                "schema_version": 1,
                "checkpoint": checkpoint,
                "limit": limit,
            },
            headers={"Accept-Encoding": accept_encoding},
        )
        r.raise_for_status()
        page: dict[str, Any] = json.loads(r.content)
        return page

    def mutation(
        self, record_id: str, fields: dict[str, Any], base: int | None = None
    ) -> dict[str, Any]:
        return {
            "id": uuid.uuid4().hex,
            "collection": "customers",
            "record_id": record_id,
            "op": "upsert",
            "fields": fields,
            "base_version": base,
            "hlc": self.clock.now().encode(),
        }

    def close(self) -> None:
        self.client.close()


def measure_push(writer: Device, n: int) -> dict[str, Any]:
    """Push ``n`` customers in batches of 1,000 through the full merge path (the database
    starts empty); the figures of the push rows (keys ``push_*``)."""
    out: dict[str, Any] = {}
    batches = [
        [writer.mutation(f"c-{i:06d}", customer(i)) for i in range(s, min(n, s + 1000))]
        for s in range(0, n, 1000)
    ]
    writer.push([writer.mutation("warm-up", customer(n))])  # unique email: no duplicate
    t0 = time.perf_counter()
    for batch in batches:
        results = writer.push(batch)
        assert all(r["status"] == "applied" for r in results)
    push_s = time.perf_counter() - t0
    out["push_mutations_per_s"] = round(n / push_s)
    size = len(json.dumps({**customer(n // 2), "owner_id": "u-rep0"}, ensure_ascii=False).encode())
    out["record_bytes"] = size
    return out


@dataclass
class Target:
    """A Fieldsync server loaded for the pull rounds."""

    label: str
    server: ServerProcess
    writer: Device
    reader: Device
    run: dict[str, Any]
    records: int = 0
    #: The checkpoint just before 220 changes, and the latest one (nothing new after it).
    before_220: str | None = None
    latest: str | None = None
    samples: dict[str, list[float]] = field(default_factory=dict)


def load_target(label: str, db_url: str, n: int) -> Target:
    """Migrate, create the users, start the server, push ``n`` customers (the push figures),
    then 220 changes after a checkpoint (the small pull)."""
    migrate(db_url)
    for k in range(5):
        create_user_direct(db_url, f"rep{k}", PASSWORD, user_id=f"u-rep{k}")
    server = ServerProcess(db_url, migrate=False).start()
    run: dict[str, Any] = {"database": label, "customers": n}
    writer = Device(server.url, "rep0", "bench-writer")
    run.update(measure_push(writer, n))
    reader = Device(server.url, "rep0", "bench-reader")
    target = Target(label, server, writer, reader, run)
    target.records, target.before_220 = full_pull(reader, IDENTITY)
    updates = [
        writer.mutation(f"c-{i:06d}", {"tier": "high"}, base=n + 2) for i in range(0, 220 * 7, 7)
    ]
    assert all(r["status"] == "applied" for r in writer.push(updates))
    target.latest = reader.pull(target.before_220, limit=5000)["checkpoint"]
    return target


IDENTITY = "identity"


def _sdk_accept_encoding() -> str:
    """What the SDK's HTTP transport asks for (its httpx client's default header)."""
    from client_sdk._transports.http import HttpTransport

    transport = HttpTransport("http://127.0.0.1")
    try:
        return str(transport._client.headers.get("accept-encoding", IDENTITY))
    finally:
        transport.close()


def full_pull(device: Device, accept_encoding: str) -> tuple[int, str]:
    """A fresh device's whole initial sync in pages of 5,000: (records, last checkpoint)."""
    checkpoint: str | None = None
    count, more = 0, True
    while more:
        page = device.pull(checkpoint, accept_encoding=accept_encoding)
        count += len(page["changes"])
        checkpoint, more = page["checkpoint"], page["has_more"]
    assert checkpoint is not None
    return count, checkpoint


def _timed(samples: dict[str, list[float]], key: str, seconds: float) -> None:
    samples.setdefault(key, []).append(seconds)


def measure_round(target: Target, accept_encoding: str, *, polls: int) -> None:
    """One round of the pull figures on one server (see :func:`main`)."""
    reader = target.reader
    for key, encoding in (("full_pull_gzip", accept_encoding), ("full_pull_identity", IDENTITY)):
        t0 = time.perf_counter()
        count, _ = full_pull(reader, encoding)
        _timed(target.samples, key, (time.perf_counter() - t0) / count)
        assert count == target.records, (count, target.records)
    small = []
    for _ in range(30):
        t0 = time.perf_counter()
        page = reader.pull(target.before_220, accept_encoding=accept_encoding)
        small.append(time.perf_counter() - t0)
        assert len(page["changes"]) == 220, len(page["changes"])
    _timed(target.samples, "pull_220", statistics.median(small))
    empty = []
    for _ in range(polls):
        t0 = time.perf_counter()
        page = reader.pull(target.latest, accept_encoding=accept_encoding)
        empty.append(time.perf_counter() - t0)
        assert not page["changes"]
    empty.sort()
    _timed(target.samples, "poll_p50", statistics.median(empty))
    _timed(target.samples, "poll_p99", empty[min(len(empty) - 1, int(len(empty) * 0.99))])


def _summary(samples: dict[str, list[float]]) -> dict[str, Any]:
    """Medians over the rounds, in the units of the report."""
    out: dict[str, Any] = {}
    med = {k: statistics.median(v) for k, v in samples.items()}
    if "full_pull_gzip" in med:
        out["full_pull_records_per_s"] = round(1 / med["full_pull_gzip"])
    if "full_pull_identity" in med:
        out["full_pull_identity_records_per_s"] = round(1 / med["full_pull_identity"])
    if "pull_220" in med:
        out["pull_220_changes_ms"] = round(med["pull_220"] * 1000, 2)
    if "poll_p50" in med:
        out["empty_poll_ms"] = round(med["poll_p50"] * 1000, 3)
        out["empty_poll_p99_ms"] = round(med["poll_p99"] * 1000, 3)
    out["rounds"] = max((len(v) for v in samples.values()), default=0)
    out["per_round_ms"] = {
        k: [round(x * (1000 if k.startswith(("pull", "poll")) else 1000 * 5000), 3) for x in v]
        for k, v in samples.items()
    }
    return out


class Ceiling:
    """The bare app (:mod:`bench.ceiling_bench`) loaded with the same customers."""

    def __init__(self, directory: Path, n: int) -> None:
        from bench.ceiling_bench import CeilingServer, build
        from tests.support.server_proc import free_port

        db = directory / "ceiling.db"
        docs = [(f"c-{i:06d}", {**customer(i), "owner_id": "u-rep0"}) for i in range(n + 1)]
        self.records = build(db, docs)
        build(
            db,
            [
                (f"c-{i:06d}", {**customer(i), "owner_id": "u-rep0", "tier": "high"})
                for i in range(0, 220 * 7, 7)
            ],
        )
        self.server = CeilingServer(db, free_port())
        self.client = httpx.Client(timeout=120)
        self.samples: dict[str, list[float]] = {}

    def pull(self, checkpoint: int | None) -> dict[str, Any]:
        r = self.client.post(
            f"{self.server.url}/pull",
            json={"checkpoint": checkpoint, "limit": 5000},
            headers={"Accept-Encoding": IDENTITY},
        )
        r.raise_for_status()
        page: dict[str, Any] = json.loads(r.content)
        return page

    def measure_round(self, *, polls: int) -> None:
        t0 = time.perf_counter()
        checkpoint, count, more = None, 0, True
        while more:
            page = self.pull(checkpoint)
            count += len(page["changes"])
            checkpoint, more = int(page["checkpoint"]), page["has_more"]
        _timed(self.samples, "full_pull_identity", (time.perf_counter() - t0) / count)
        total = self.records + 220
        small = []
        for _ in range(30):
            t0 = time.perf_counter()
            page = self.pull(total - 220)
            small.append(time.perf_counter() - t0)
            assert len(page["changes"]) == 220
        _timed(self.samples, "pull_220", statistics.median(small))
        empty = []
        for _ in range(polls):
            t0 = time.perf_counter()
            page = self.pull(total)
            empty.append(time.perf_counter() - t0)
            assert not page["changes"]
        empty.sort()
        _timed(self.samples, "poll_p50", statistics.median(empty))
        _timed(self.samples, "poll_p99", empty[min(len(empty) - 1, int(len(empty) * 0.99))])


def run_one(db_url: str, n: int, label: str) -> dict[str, Any]:
    """One database alone (no ceiling, one round): kept for quick manual runs."""
    target = load_target(label, db_url, n)
    try:
        measure_round(target, _sdk_accept_encoding(), polls=100)
        target.run.update(_summary(target.samples))
        target.run.update(concurrent_writers(target.server.url, writers=4, batches=10, size=200))
        return target.run
    finally:
        target.writer.close()
        target.reader.close()
        target.server.stop()


def concurrent_writers(url: str, *, writers: int, batches: int, size: int) -> dict[str, Any]:
    acknowledged: list[str] = []
    lock = threading.Lock()

    def work(k: int) -> None:
        device = Device(url, f"rep{k + 1}", f"bench-cw-{k}")
        for b in range(batches):
            muts = [
                device.mutation(
                    f"cw-{k}-{b}-{i}", distinct_customer(10**7 * (k + 1) + b * size + i)
                )
                for i in range(size)
            ]
            results = device.push(muts)
            with lock:
                acknowledged.extend(
                    m["record_id"]
                    for m, r in zip(muts, results, strict=True)
                    if r["status"] == "applied"
                )
        device.close()

    threads = [threading.Thread(target=work, args=(k,)) for k in range(writers)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    admin_view: set[str] = set()
    for k in range(writers):
        device = Device(url, f"rep{k + 1}", f"bench-cw-check-{k}")
        checkpoint, more = None, True
        while more:
            page = device.pull(checkpoint)
            admin_view.update(
                c["record_id"] for c in page["changes"] if c["record_id"].startswith("cw-")
            )
            checkpoint, more = page["checkpoint"], page["has_more"]
        device.close()
    missing = [r for r in acknowledged if r not in admin_view]
    return {
        "concurrent_writers": writers,
        "concurrent_acknowledged": len(acknowledged),
        "concurrent_missing": len(missing),
        "concurrent_mutations_per_s": round(len(acknowledged) / elapsed),
    }


def _postgres_db() -> tuple[str, str] | None:
    try:
        import psycopg

        name = f"fs_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return PG_ADMIN.rsplit("/", 1)[0] + "/" + name, name
    except Exception:
        return None


def _drop_postgres(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _load_average() -> float:
    return round(os.getloadavg()[0], 2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="2,000 customers (smoke run)")
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--customers", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (5)")
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "server.json")
    args = parser.parse_args(argv)
    n = args.customers or (2000 if args.quick else 20_000)
    rounds = args.rounds or (2 if args.quick else 5)
    polls = 50 if args.quick else 200
    accept = _sdk_accept_encoding()
    targets: list[Target] = []
    pg: tuple[str, str] | None = None
    load: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        try:
            if args.db in ("sqlite", "both"):
                targets.append(load_target("sqlite", f"sqlite:///{tmp}/bench.db", n))
            if args.db in ("postgres", "both"):
                pg = _postgres_db()
                if pg is None:
                    print("PostgreSQL not reachable: skipped")
                else:
                    targets.append(load_target("postgresql", pg[0], n))
            ceiling = Ceiling(Path(tmp), n)
            with ceiling.server:
                for target in targets:  # warm-up: every page once, every connection open
                    full_pull(target.reader, accept)
                ceiling.measure_round(polls=10)
                ceiling.samples.clear()
                load["before"] = _load_average()
                for _ in range(rounds):
                    ceiling.measure_round(polls=polls)
                    for target in targets:
                        measure_round(target, accept, polls=polls)
                load["after"] = _load_average()
            for target in targets:
                target.run.update(_summary(target.samples))
                target.run.update(
                    concurrent_writers(target.server.url, writers=4, batches=10, size=200)
                )
        finally:
            for target in targets:
                target.writer.close()
                target.reader.close()
                target.server.stop()
            if pg is not None:
                _drop_postgres(pg[1])
    runs = [t.run for t in targets]
    ceiling_figures = _summary(ceiling.samples)
    ceiling_figures.pop("full_pull_records_per_s", None)
    result = {
        "bench": "server",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        "load_average_1min": load,
        "method": (
            f"{rounds} rounds interleaved (ceiling, then each database), median of the rounds; "
            f"independent httpx client over loopback; full pull in pages of 5,000, JSON parsed; "
            f"compressed pull asks Accept-Encoding: {accept!r} (the SDK's), the other "
            f"'identity'; empty poll p50/p99 of {polls} polls per round"
        ),
        "accept_encoding": accept,
        "ceiling": ceiling_figures,
        "aims": {
            "full_pull_records_per_s": {"ratio_of_ceiling": 0.5},
            "full_pull_identity_records_per_s": {"ratio_of_ceiling": 0.7},
            "empty_poll_ms": {"times_ceiling": 1.5},
            "pull_220_changes_ms": 4,
            "push_mutations_per_s": 10000,
        },
        "runs": runs,
    }
    if args.output.exists():  # the push bench's figures (bench/push_bench.py) stay
        earlier = json.loads(args.output.read_text())
        if "push" in earlier:
            result["push"] = earlier["push"]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    keys = [
        "push_mutations_per_s",
        "full_pull_records_per_s",
        "full_pull_identity_records_per_s",
        "pull_220_changes_ms",
        "empty_poll_ms",
        "empty_poll_p99_ms",
        "concurrent_acknowledged",
        "concurrent_missing",
    ]
    print(f"load average {load}")
    print(f"{'figure':34}" + "".join(f"{r['database']:>14}" for r in runs) + f"{'ceiling':>14}")
    ceil_show = {**ceiling_figures}
    ceil_show["full_pull_records_per_s"] = ceiling_figures.get("full_pull_identity_records_per_s")
    for key in keys:
        print(
            f"{key:34}"
            + "".join(f"{r.get(key, '-')!s:>14}" for r in runs)
            + f"{ceil_show.get(key, '-')!s:>14}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
