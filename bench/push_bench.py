"""Push throughput where it used to fall: a large table, a database without fresh planner
statistics, and several writers on several instances (issues 17 and 19).

Over real uvicorn processes on loopback, batches of 1,000 new customers (~430 bytes of
JSON each; request bodies built before the clock starts, so the client costs little):

1. **SQLite at 100,000 records**: load 100,000 customers through the push path, then
   time 10 more batches; beside it the rate of the first 20 batches (an empty table).
2. **PostgreSQL without fresh statistics**: a fresh database (migrated and analysed
   while empty), autovacuum off on every table, loaded with 100,000 customers through
   pushes; the rate of the first 20 batches against 10 batches at 100,000 records, and
   against 10 more once the database is analysed (the background search indexer off:
   :func:`pg_stale_phase`).
3. **PostgreSQL writers**: one writer on one instance, then four writers across two
   instances (two each), pushing for ``--seconds`` each; mutations/s in total. Pushes
   no longer write search entries: each instance's background indexer catches them up
   meanwhile (one instance at a time), and after each round the bench notes how many
   were still to index and how long the next search took to index them first; a fourth
   round repeats the four writers with a search halfway through (what a manager's search
   costs during such a burst, and what it takes from the writers).

Figures are merged into ``bench/results/server.json`` under ``push`` (the server bench
owns the rest of that file) with the 1-minute load average beside each.

    python -m bench.push_bench [--quick] [--phases sqlite,pg_stale,pg_writers]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from client_sdk._ids import uuid7
from tests.support.server_proc import ServerProcess, create_user_direct, migrate

from .server_bench import PASSWORD, REPO, Device, _drop_postgres, _postgres_db, distinct_customer

BATCH = 1000
#: Customer numbers never reused within a run (phones, e-mails and names stay unique).
_UNIQUE = itertools.count()
AIMS = {
    "sqlite_push_at_100k_per_s": 10_000,
    "pg_writers_ratio": 1.6,
    "pg_writers_total_per_s": 5_000,
}


def _load() -> float:
    return round(os.getloadavg()[0], 2)


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _waited(pid: int) -> float:
    """Seconds the threads of ``pid`` spent runnable but waiting for a core (the run
    queue: ``/proc/<pid>/task/*/schedstat``, second field) — CPU the machine's other
    work took from them."""
    total = 0
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError, IndexError, ValueError):
                total += int(Path(f"/proc/{pid}/task/{task}/schedstat").read_text().split()[1])
    except OSError:
        return 0.0
    return total / 1e9


def _proc_cpu() -> dict[int, tuple[int, str, float]]:
    """Every process's (parent pid, command name, CPU seconds so far) from ``/proc``
    (Linux; empty elsewhere)."""
    out: dict[int, tuple[int, str, float]] = {}
    try:
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return out
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        # after the name: state ppid … utime (11th) stime (12th)
        out[pid] = (int(fields[1]), name, (int(fields[11]) + int(fields[12])) / _TICK)
    return out


class CpuSplit:
    """CPU seconds spent during a round — where a round's cores went:

    * ``server``: the server processes (their process trees);
    * ``postgres``: the PostgreSQL backends connected to the bench's database (other
      databases' backends — other work on a shared machine — are left out);
    * ``postgres_shared``: PostgreSQL's own processes (WAL writer, checkpointer,
      background writer …), shared with whatever else the cluster serves;
    * ``bench``: this process (the writers' HTTP clients);
    * ``run_queue_s``: how long the server's and the PostgreSQL backends' threads were
      ready to run but waited for a core — on a shared 2-core machine, the CPU other
      work took from the round.

    A process that ends during the round is not counted (the servers and their pools'
    connections live throughout); one that starts during it counts from zero."""

    def __init__(self, server_pids: list[int], db_url: str | None) -> None:
        self.server_pids = server_pids
        self.db_url = db_url
        self._before: dict[int, float] = {}
        self._bench0 = 0.0

    def _backends(self) -> tuple[set[int], set[int]]:
        """(client backends of the bench's database, PostgreSQL's background processes)."""
        if self.db_url is None:
            return set(), set()
        import psycopg

        url = self.db_url.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid, datname = current_database(), backend_type = 'client backend' "
                "FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
            ).fetchall()
        ours = {pid for pid, same_db, client in rows if same_db and client}
        shared = {pid for pid, _, client in rows if not client}
        return ours, shared

    def _sample(self) -> dict[int, float]:
        ours, shared = self._backends()
        procs = _proc_cpu()
        children: dict[int, list[int]] = {}
        for pid, (ppid, _, _) in procs.items():
            children.setdefault(ppid, []).append(pid)
        self._server_tree: set[int] = set()
        todo = list(self.server_pids)
        while todo:
            pid = todo.pop()
            if pid in procs:
                self._server_tree.add(pid)
                todo += children.get(pid, [])
        self._ours, self._shared = ours, shared
        self._queued = {pid: _waited(pid) for pid in self._server_tree | ours}
        return {pid: cpu for pid, (_, _, cpu) in procs.items()}

    def result(self, elapsed: float, mutations: int) -> dict[str, Any]:
        before, queued_before = self._before, self._queued
        after = self._sample()
        queued = {pid: waited - queued_before.get(pid, 0.0) for pid, waited in self._queued.items()}
        own = os.times()

        def spent(pids: set[int]) -> float:
            return sum(after[p] - before.get(p, 0.0) for p in pids if p in after)

        used = {
            "server": spent(self._server_tree),
            "postgres": spent(self._ours),
            "postgres_shared": spent(self._shared),
            "bench": own.user + own.system - self._bench0,
        }
        per = max(mutations, 1)
        return {
            "cpu_s": {k: round(v, 2) for k, v in used.items()},
            "cores_busy": {k: round(v / elapsed, 2) for k, v in used.items()},
            "cpu_ms_per_mutation": {k: round(1000 * v / per, 3) for k, v in used.items()},
            "run_queue_s": {
                "server": round(sum(queued.get(p, 0.0) for p in self._server_tree), 2),
                "postgres": round(sum(queued.get(p, 0.0) for p in self._ours), 2),
            },
        }

    def start(self) -> CpuSplit:
        """Take the first sample (just before the round starts)."""
        own = os.times()
        self._bench0 = own.user + own.system
        self._before = self._sample()
        return self


class Writer(Device):
    """A device that pushes prepared request bodies (encoded once, outside the timing)."""

    def __init__(self, url: str, username: str, device_id: str) -> None:
        super().__init__(url, username, device_id)
        self.client.timeout = httpx.Timeout(300)
        self.client.headers["Content-Type"] = "application/json"

    def body(self, prefix: str, start: int, n: int = BATCH, *, random_ids: bool = False) -> bytes:
        """A push of ``n`` new customers. Mutation ids as the SDK makes them (UUIDv7:
        time-ordered, so each batch's ids land together in ``applied_mutations``' index);
        ``random_ids``: UUIDv4, as a client that does not follow the SDK might."""
        mutations = [
            {
                "id": uuid.uuid4().hex if random_ids else uuid7(),
                "collection": "customers",
                "record_id": f"{prefix}-{i:08d}",
                "op": "upsert",
                "fields": distinct_customer(next(_UNIQUE)),
                "hlc": self.clock.now().encode(),
            }
            for i in range(start, start + n)
        ]
        payload = {"device_id": self.device_id, "schema_version": 1, "mutations": mutations}
        return json.dumps(payload, ensure_ascii=False).encode()

    def send(self, body: bytes) -> int:
        r = self.client.post("/v1/sync/push", content=body)
        r.raise_for_status()
        results = r.json()["results"]
        assert all(x["status"] == "applied" for x in results), results[0]
        return len(results)

    def close(self) -> None:
        self.client.close()


def _rate(writer: Writer, bodies: list[bytes]) -> int:
    t0 = time.perf_counter()
    n = sum(writer.send(b) for b in bodies)
    return round(n / (time.perf_counter() - t0))


def load_and_measure(url: str, records: int, label: str) -> dict[str, Any]:
    """Push ``records`` customers (timing the first 20 batches), then 10 more batches."""
    out: dict[str, Any] = {"records": records}
    writer = Writer(url, "rep0", f"bench-push-{label}")
    writer.send(writer.body("warm", 10**8 - 10, 1))
    first = min(20, records // BATCH)
    out["load_average_start"] = _load()
    out["push_first_20k_per_s"] = _rate(
        writer, [writer.body("c", s) for s in range(0, first * BATCH, BATCH)]
    )
    for s in range(first * BATCH, records, BATCH):
        writer.send(writer.body("c", s))
    bodies = [writer.body("c", s) for s in range(records, records + 10 * BATCH, BATCH)]
    out["load_average_at_size"] = _load()
    out["push_at_size_per_s"] = _rate(writer, bodies)
    out["load_average_end"] = _load()
    start = records + 10 * BATCH
    random_ids = [
        writer.body("r", s, random_ids=True) for s in range(start, start + 5 * BATCH, BATCH)
    ]
    out["push_at_size_random_ids_per_s"] = _rate(writer, random_ids)
    out["at_size_vs_first"] = round(out["push_at_size_per_s"] / out["push_first_20k_per_s"], 2)
    writer.close()
    return out


def _users(db_url: str, n: int = 5) -> None:
    for k in range(n):
        create_user_direct(db_url, f"rep{k}", PASSWORD, user_id=f"u-rep{k}")


@contextmanager
def _postgres() -> Iterator[str]:
    pg = _postgres_db()
    if pg is None:
        raise SystemExit("PostgreSQL not reachable")
    try:
        yield pg[0]
    finally:
        _drop_postgres(pg[1])


def sqlite_phase(records: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/push.db"
        migrate(url)
        _users(url)
        with ServerProcess(url, migrate=False) as server:
            return load_and_measure(server.url, records, "sqlite")


def _planner_rows(conn: Any) -> dict[str, Any]:
    reltuples = conn.execute("SELECT reltuples FROM pg_class WHERE relname = 'records'").fetchone()
    row = conn.execute(
        "SELECT last_analyze, last_autoanalyze FROM pg_stat_user_tables WHERE relname = 'records'"
    ).fetchone()
    return {
        "reltuples": reltuples[0] if reltuples else None,
        "analyzed": bool(row and (row[0] or row[1])),
    }


def pg_stale_phase(records: int) -> dict[str, Any]:
    """The push at ``records`` on a database whose planner knows nothing of them, against
    the push on an empty table (``at_size_vs_first``: what size alone costs, as on SQLite)
    and against the same database once analysed (``stale_vs_fresh_at_size``: what the
    missing statistics cost — 1.0 when the push's statements are plan-stable).

    The background search indexer is off in this phase (``FIELDSYNC_SEARCH_INDEX_INTERVAL_S=0``):
    right after the load it would be indexing the 100,000 customers on the same two cores
    while the last batches are timed, which is CPU competition, not statistics (measured
    with it on: 0.79× at 14:44 on 2026-12-03 against 0.90× off at 11:38). The writers phase
    runs with it on."""
    import psycopg

    with _postgres() as url:
        migrate(url)  # ends with ANALYZE of the empty tables: stale from the first batch on
        _users(url)
        with psycopg.connect(url, autocommit=True) as conn:
            tables = [
                r[0]
                for r in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                ).fetchall()
            ]
            for table in tables:
                conn.execute(f'ALTER TABLE "{table}" SET (autovacuum_enabled = false)')
        env = {"FIELDSYNC_SEARCH_INDEX_INTERVAL_S": "0"}
        with ServerProcess(url, migrate=False, env=env) as server:
            out = load_and_measure(server.url, records, "pg")
            with psycopg.connect(url, autocommit=True) as conn:
                stale = _planner_rows(conn)
                conn.execute("ANALYZE")
                fresh = _planner_rows(conn)
            writer = Writer(server.url, "rep0", "bench-push-pg-fresh")
            start = records + 20 * BATCH
            bodies = [writer.body("f", s) for s in range(start, start + 10 * BATCH, BATCH)]
            out["push_at_size_fresh_statistics_per_s"] = _rate(writer, bodies)
            writer.close()
        out["load_average_end"] = _load()
        out["stale_vs_fresh_at_size"] = round(
            out["push_at_size_per_s"] / out["push_at_size_fresh_statistics_per_s"], 2
        )
        out["planner_reltuples_records"] = stale["reltuples"]
        out["autoanalyzed"] = stale["analyzed"]
        out["planner_after_analyze"] = fresh
        out["search_indexer"] = "off"
        return out


def _writers_round(
    urls: list[str],
    writers: int,
    seconds: float,
    tag: str,
    db_url: str | None = None,
    *,
    search_halfway: bool = False,
    server_pids: list[int] | None = None,
) -> dict[str, Any]:
    devices = [Writer(urls[w % len(urls)], f"rep{w}", f"bench-{tag}-{w}") for w in range(writers)]
    # Bodies built before the clock starts: enough for the time at a generous rate.
    per_writer = max(4, int(seconds * 4))
    bodies = [
        [d.body(f"{tag}{w}", k * BATCH) for k in range(per_writer)] for w, d in enumerate(devices)
    ]
    for w, d in enumerate(devices):  # warm-up: a connection and a plan per instance
        d.send(d.body(f"{tag}warm{w}", 0, 10))
    counts = [0] * writers
    stop = threading.Event()

    def work(w: int) -> None:
        for body in bodies[w]:
            if stop.is_set():
                return
            counts[w] += devices[w].send(body)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(writers)]
    load_before = _load()
    cpu = CpuSplit(server_pids or [], db_url).start()
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    during: dict[str, Any] = {}
    reader: threading.Thread | None = None
    if search_halfway and db_url is not None:
        # A manager's search halfway through (it indexes what is pending first).
        def search() -> None:
            time.sleep(seconds / 2)
            during.update({f"{k}_halfway": v for k, v in _search_after(db_url).items()})

        reader = threading.Thread(target=search)
        reader.start()
    stop.wait(seconds)
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    split = cpu.result(elapsed, sum(counts))
    if reader is not None:
        reader.join()
    load_after = _load()
    for d in devices:
        d.close()
    out = {
        "writers": writers,
        "instances": len(urls),
        "mutations": sum(counts),
        "seconds": round(elapsed, 2),
        "per_s": round(sum(counts) / elapsed),
        "load_average_before": load_before,
        "load_average_after": load_after,
        **split,
    }
    if db_url is not None and _SEARCH_AFTER[0]:
        out.update(during)
        out.update(_search_after(db_url))
    return out


def _search_after(db_url: str) -> dict[str, Any]:
    """Right after a round: how many pushed customers the background indexer has not
    indexed yet, and how long the next search then takes to catch up (a reader never
    misses a committed write: it indexes what is left first — server/crm/indexing.py)."""
    from server.crm.indexing import ensure_search_current, search_backlog
    from server.db import make_engine

    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            backlog = search_backlog(conn)
            t0 = time.perf_counter()
            ensure_search_current(conn)
            caught_up = time.perf_counter() - t0
    finally:
        engine.dispose()
    return {"search_backlog_at_end": backlog, "first_search_catch_up_s": round(caught_up, 2)}


ROUNDS = ("one", "four", "again", "searched")
#: ``--no-search-after``: skip the search catch-up after each round (profiling runs).
_SEARCH_AFTER = [True]


def pg_writers_phase(seconds: float, rounds: tuple[str, ...] = ROUNDS) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with _postgres() as url:
        migrate(url)
        _users(url)
        # Each instance in a session of its own, as separate services would be
        # (bench/own_session.py: the kernel shares the CPU between sessions).
        a = ServerProcess(url, migrate=False, module="bench.own_session")
        b = ServerProcess(url, migrate=False, module="bench.own_session")
        with a, b:
            pids = [p for p in (a.pid, b.pid) if p is not None]
            print("server pids", pids, flush=True)
            if "one" in rounds:
                out["one_writer_one_instance"] = _writers_round(
                    [a.url], 1, seconds, "one", url, server_pids=pids
                )
            if "four" in rounds:
                out["four_writers_two_instances"] = _writers_round(
                    [a.url, b.url], 4, seconds, "four", url, server_pids=pids
                )
            if "again" in rounds:
                out["one_writer_one_instance_again"] = _writers_round(
                    [a.url], 1, seconds, "again", url, server_pids=pids
                )
            if "searched" in rounds:
                # Apart from the figures above: the same burst with a search halfway.
                out["four_writers_with_a_search_halfway"] = _writers_round(
                    [a.url, b.url],
                    4,
                    seconds,
                    "searched",
                    url,
                    search_halfway=True,
                    server_pids=pids,
                )
    four = out.get("four_writers_two_instances", {}).get("per_s")
    one = out.get("one_writer_one_instance", {}).get("per_s")
    again = out.get("one_writer_one_instance_again", {}).get("per_s")
    if four and one and again:
        # Against the mean of the single-writer rounds before and after (the machine's
        # load drifts); each side on its own too.
        out["ratio"] = round(four / ((one + again) / 2), 2)
    if four and one:
        out["ratio_vs_before"] = round(four / one, 2)
    if four and again:
        out["ratio_vs_after"] = round(four / again, 2)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="10,000 records, 4 s rounds")
    parser.add_argument("--records", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--phases", default="sqlite,pg_stale,pg_writers")
    parser.add_argument(
        "--rounds",
        default=",".join(ROUNDS),
        help="PostgreSQL writers rounds to run (one,four,again,searched)",
    )
    parser.add_argument(
        "--no-search-after",
        action="store_true",
        help="skip the search catch-up timed after each writers round",
    )
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "server.json")
    args = parser.parse_args(argv)
    records = args.records or (10_000 if args.quick else 100_000)
    seconds = args.seconds or (4.0 if args.quick else 20.0)
    phases = set(args.phases.split(","))
    _SEARCH_AFTER[0] = not args.no_search_after
    existing = json.loads(args.output.read_text()) if args.output.exists() else {}
    push: dict[str, Any] = dict(existing.get("push") or {})
    push["date"] = time.strftime("%Y-%m-%d %H:%M:%S")
    push["aims"] = AIMS
    push["batch"] = BATCH
    if "sqlite" in phases:
        push["sqlite_date"] = time.strftime("%Y-%m-%d %H:%M:%S")
        push["sqlite_at_size"] = sqlite_phase(records)
        print("sqlite", push["sqlite_at_size"], flush=True)
    if "pg_stale" in phases:
        push["pg_stale_date"] = time.strftime("%Y-%m-%d %H:%M:%S")
        push["postgresql_without_statistics"] = pg_stale_phase(records)
        print("pg_stale", push["postgresql_without_statistics"], flush=True)
    if "pg_writers" in phases:
        push["pg_writers_date"] = time.strftime("%Y-%m-%d %H:%M:%S")
        push["postgresql_writers"] = pg_writers_phase(seconds, tuple(args.rounds.split(",")))
        print("pg_writers", push["postgresql_writers"], flush=True)
    existing = json.loads(args.output.read_text()) if args.output.exists() else {}
    existing["push"] = push
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(existing, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
