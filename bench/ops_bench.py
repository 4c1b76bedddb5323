"""Overhead of metrics and logging on push and pull (issue 18, aim ≤ 5 %).

Two real server processes (uvicorn, each on its own SQLite file holding the same data)
differ only in observability: **on** serves ``/metrics`` and writes a JSON access line
per request (log level info, to a file); **off** has ``FIELDSYNC_METRICS_ENABLED=false``,
no access log and log level warning. (The fleet-health recorder is part of the sync
engine, on in both.) One client, over keep-alive HTTP on loopback, measures in one run,
alternating the two servers request by request (which goes first alternates too) so
that a change in the shared machine's load hits both alike:

* **push** — a batch of ``--batch`` new customers;
* **pull** — a page of ``--page`` changes from an initial checkpoint;
* **poll** — an empty pull from the current checkpoint (the most frequent request).

Figures are medians per request; overhead = on / off − 1.

    python -m bench.ops_bench --output bench/results/ops.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from sync_protocol import HybridLogicalClock
from tests.support.server_proc import ServerProcess, migrate, seed_demo

ON = {
    "FIELDSYNC_METRICS_ENABLED": "true",
    "FIELDSYNC_ACCESS_LOG": "true",
    "FIELDSYNC_LOG_LEVEL": "info",
    "FIELDSYNC_LOG_FORMAT": "json",
}
OFF = {
    "FIELDSYNC_METRICS_ENABLED": "false",
    "FIELDSYNC_ACCESS_LOG": "false",
    "FIELDSYNC_LOG_LEVEL": "warning",
}


class Client:
    def __init__(self, server: ServerProcess, device_id: str) -> None:
        self.http = httpx.Client(base_url=server.url, timeout=60)
        tokens = server.login("rep1", device_id=device_id)
        self.http.headers["Authorization"] = f"Bearer {tokens['access_token']}"
        self.device_id = device_id
        self.clock = HybridLogicalClock(device_id)
        self.latest: str | None = None

    def push(self, batch: int) -> float:
        mutations = [
            {
                "id": uuid.uuid4().hex,
                "collection": "customers",
                "record_id": uuid.uuid4().hex,
                "op": "upsert",
                "fields": {"name": f"Bench {i}", "status": "potential"},
                "hlc": self.clock.now().encode(),
            }
            for i in range(batch)
        ]
        body = {"device_id": self.device_id, "schema_version": 1, "mutations": mutations}
        started = time.perf_counter()
        response = self.http.post("/v1/sync/push", json=body)
        seconds = time.perf_counter() - started
        response.raise_for_status()
        return seconds

    def pull(self, checkpoint: str | None, limit: int) -> tuple[float, dict[str, Any]]:
        body = {"device_id": self.device_id, "schema_version": 1, "checkpoint": checkpoint}
        body["limit"] = limit
        started = time.perf_counter()
        response = self.http.post("/v1/sync/pull", json=body)
        seconds = time.perf_counter() - started
        response.raise_for_status()
        page: dict[str, Any] = response.json()
        return seconds, page

    def catch_up(self) -> None:
        checkpoint = None
        while True:
            _s, page = self.pull(checkpoint, 5000)
            checkpoint = page["checkpoint"]
            if not page["has_more"]:
                self.latest = checkpoint
                return


def measure(
    clients: dict[str, Client], args: argparse.Namespace, samples: dict[str, dict[str, list[float]]]
) -> None:
    """One round: each request made on both servers back to back, in alternating order."""
    orders = (("on", "off"), ("off", "on"))
    for i in range(args.requests):
        for name in orders[i % 2]:
            samples[name]["push"].append(clients[name].push(args.batch))
    for client in clients.values():
        client.catch_up()
    for i in range(args.requests):
        for name in orders[i % 2]:
            samples[name]["pull"].append(clients[name].pull(None, args.page)[0])
            samples[name]["poll"].append(clients[name].pull(clients[name].latest, args.page)[0])


def run(args: argparse.Namespace) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="fieldsync-ops-bench-"))
    servers: dict[str, ServerProcess] = {}
    for name, env in (("on", ON), ("off", OFF)):
        url = f"sqlite:///{folder / name}.db"
        migrate(url)
        seed_demo(url, customers=args.customers)
        log = folder / f"{name}.log"
        server = ServerProcess(url, env=env, quiet=False, log_path=log, startup_timeout_s=180)
        servers[name] = server.start()
    load_before = os.getloadavg()[0]
    try:
        clients = {name: Client(server, f"bench-{name}") for name, server in servers.items()}
        samples: dict[str, dict[str, list[float]]] = {
            name: {"push": [], "pull": [], "poll": []} for name in servers
        }
        for _round in range(args.rounds):
            measure(clients, args, samples)
        scrape = httpx.get(f"{servers['on'].url}/metrics").text
        log_lines = sum(1 for _ in (folder / "on.log").open(encoding="utf-8"))
    finally:
        for server in servers.values():
            server.stop()
    load_after = os.getloadavg()[0]
    ops = {}
    for op in ("push", "pull", "poll"):
        on = statistics.median(samples["on"][op]) * 1000
        off = statistics.median(samples["off"][op]) * 1000
        ops[op] = {
            "on_ms": round(on, 3),
            "off_ms": round(off, 3),
            "overhead_pct": round((on / off - 1) * 100, 2),
            "samples": len(samples["on"][op]),
        }
    return {
        "ops": ops,
        "aim_overhead_pct": 5.0,
        "batch": args.batch,
        "page": args.page,
        "customers": args.customers,
        "rounds": args.rounds,
        "requests_per_round": args.requests,
        "metrics_exposed": "fieldsync_http_request_duration_seconds" in scrape,
        "access_log_lines": log_lines,
        "load_avg_1m_before": round(load_before, 2),
        "load_avg_1m_after": round(load_after, 2),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ops_bench", description=__doc__)
    parser.add_argument("--output", type=Path, default=Path("bench/results/ops.json"))
    parser.add_argument("--quick", action="store_true", help="a smoke run (small sizes)")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--requests", type=int, default=25, help="of each kind per round")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--page", type=int, default=500)
    parser.add_argument("--customers", type=int, default=2000)
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.requests, args.customers = 2, 3, 100
    result = run(args)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result["ops"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
