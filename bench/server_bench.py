"""Server throughput over a real uvicorn process on loopback, on SQLite and PostgreSQL.

For each database: push 20,000 customers (~430 bytes of JSON each) in batches of 1,000
through the full merge path; a fresh device pulls them all (pages of 5,000, gzip, JSON
parsed by the client as a real one must); a pull of 220 changes; a pull with nothing
new; and 4 concurrent writers, counting acknowledged writes that were not stored.
Figures go to ``bench/results/server.json`` and a table on stdout.

    python -m bench.server_bench [--quick] [--db sqlite|postgres|both] [--output PATH]

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

    def pull(self, checkpoint: str | None, limit: int = 5000) -> dict[str, Any]:
        r = self.client.post(
            "/v1/sync/pull",
            json={
                "device_id": self.device_id,
                "schema_version": 1,
                "checkpoint": checkpoint,
                "limit": limit,
            },
        )
        r.raise_for_status()
        page: dict[str, Any] = r.json()
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


def run_one(db_url: str, n: int, label: str) -> dict[str, Any]:
    migrate(db_url)
    for k in range(5):
        create_user_direct(db_url, f"rep{k}", PASSWORD, user_id=f"u-rep{k}")
    out: dict[str, Any] = {"database": label, "customers": n}
    with ServerProcess(db_url, migrate=False) as server:
        writer = Device(server.url, "rep0", "bench-writer")
        batches = [
            [writer.mutation(f"c-{i:06d}", customer(i)) for i in range(s, min(n, s + 1000))]
            for s in range(0, n, 1000)
        ]
        writer.push([writer.mutation("warm-up", customer(0))])
        t0 = time.perf_counter()
        for batch in batches:
            results = writer.push(batch)
            assert all(r["status"] == "applied" for r in results)
        push_s = time.perf_counter() - t0
        out["push_mutations_per_s"] = round(n / push_s)
        size = len(
            json.dumps({**customer(n // 2), "owner_id": "u-rep0"}, ensure_ascii=False).encode()
        )
        out["record_bytes"] = size

        reader = Device(server.url, "rep0", "bench-reader")
        reader.pull(None, limit=1)  # warm-up
        full: list[float] = []
        checkpoint: str | None = None
        for _ in range(3):
            t0 = time.perf_counter()
            checkpoint, count, more = None, 0, True
            while more:
                page = reader.pull(checkpoint)
                count += len(page["changes"])
                checkpoint, more = page["checkpoint"], page["has_more"]
            full.append(time.perf_counter() - t0)
            assert count == n + 1, count
        out["full_pull_records_per_s"] = round((n + 1) / min(full))
        out["full_pull_s"] = round(min(full), 3)

        updates = [
            writer.mutation(f"c-{i:06d}", {"tier": "high"}, base=n + 2)
            for i in range(0, 220 * 7, 7)
        ]
        writer.push(updates)
        small: list[float] = []
        for _ in range(30):
            t0 = time.perf_counter()
            page = reader.pull(checkpoint)
            small.append(time.perf_counter() - t0)
            assert len(page["changes"]) == 220
        out["pull_220_changes_ms"] = round(statistics.median(small) * 1000, 2)
        latest = page["checkpoint"]
        empty: list[float] = []
        for _ in range(100):
            t0 = time.perf_counter()
            page = reader.pull(latest)
            empty.append(time.perf_counter() - t0)
            assert not page["changes"]
        out["empty_poll_ms"] = round(statistics.median(empty) * 1000, 2)

        out.update(concurrent_writers(server.url, writers=4, batches=10, size=200))
        writer.close()
        reader.close()
    return out


def concurrent_writers(url: str, *, writers: int, batches: int, size: int) -> dict[str, Any]:
    acknowledged: list[str] = []
    lock = threading.Lock()

    def work(k: int) -> None:
        device = Device(url, f"rep{k + 1}", f"bench-cw-{k}")
        for b in range(batches):
            muts = [device.mutation(f"cw-{k}-{b}-{i}", customer(i)) for i in range(size)]
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="2,000 customers (smoke run)")
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--customers", type=int, default=None)
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "server.json")
    args = parser.parse_args(argv)
    n = args.customers or (2000 if args.quick else 20_000)
    runs: list[dict[str, Any]] = []
    if args.db in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            runs.append(run_one(f"sqlite:///{tmp}/bench.db", n, "sqlite"))
    if args.db in ("postgres", "both"):
        pg = _postgres_db()
        if pg is None:
            print("PostgreSQL not reachable: skipped")
        else:
            try:
                runs.append(run_one(pg[0], n, "postgresql"))
            finally:
                _drop_postgres(pg[1])
    result = {
        "bench": "server",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        "aims": {
            "push_mutations_per_s": 5000,
            "full_pull_records_per_s": 80000,
            "pull_220_changes_ms": 5,
            "empty_poll_ms": 2,
        },
        "runs": runs,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    keys = [
        "push_mutations_per_s",
        "full_pull_records_per_s",
        "pull_220_changes_ms",
        "empty_poll_ms",
        "concurrent_acknowledged",
        "concurrent_missing",
    ]
    print(f"{'figure':28}" + "".join(f"{r['database']:>14}" for r in runs))
    for key in keys:
        print(f"{key:28}" + "".join(f"{r.get(key, '-')!s:>14}" for r in runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
