"""Search latency during a backlog, and what indexing a customer costs (issue 17).

In-process, on a real database (PostgreSQL and SQLite): customers pushed through the
push path (``apply_push``, batches of 1,000, owners spread over two teams), then:

1. **seed** — ``--seed`` customers pushed and fully indexed (caught up and, on
   PostgreSQL, settled into the GIN indexes): the per-customer cost of each step;
2. **burst** — ``--burst`` more customers pushed with nobody indexing (as after a burst
   the background indexer could not follow);
3. **first search** — what a search pays before it answers: the catch-up of the whole
   backlog (:func:`server.crm.indexing.ensure_search_current`) — since migration 0017
   the entries are written unsettled (no GIN work), so this is the stage alone;
4. **searches with the burst unsettled** — the queries of the server search bench as
   the admin and a team's manager (:func:`server.manager.search.search_rows`, a page of
   50), median of ``--repeats``; then the burst is settled (timed) and the same
   queries run again, and once more after ``VACUUM ANALYZE`` (PostgreSQL: what the
   table looks like once autovacuum has passed); the answers (totals and pages) must
   be equal.

The per-customer cost before migration 0017 was the catch-up and the settle together
(every entry went into the GIN indexes as it was written); both are reported.

    python -m bench.search_backlog_bench [--db postgres,sqlite] [--seed N] [--burst N]

Writes ``bench/results/search_backlog.json`` (1-minute load average beside each figure).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .report_bench import GIVEN, SEARCHES, SURNAMES
from .server_bench import REPO, _drop_postgres, _postgres_db

BATCH = 1000


def _load() -> float:
    return round(os.getloadavg()[0], 2)


@contextmanager
def _database(kind: str) -> Iterator[str]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/search.db"
        return
    pg = _postgres_db()
    if pg is None:
        raise SystemExit("PostgreSQL not reachable")
    try:
        yield pg[0]
    finally:
        _drop_postgres(pg[1])


def _customer(rng: random.Random, i: int) -> dict[str, Any]:
    name = rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN)
    return {
        "name": name,
        "company": f"{rng.choice(['星辰', '华夏', '东方', '蓝天'])}科技有限公司 {i}",
        "phone": f"+86 21 {i:08d}",
        "mobile": f"+86 138 {i:08d}",
        "email": f"customer{i}@example.com",
        "city": "上海",
        "status": "potential",
    }


class World:
    def __init__(self, url: str) -> None:
        from server.accounts import create_team, create_user
        from server.db import make_engine, make_session_factory
        from tests.support.server_proc import migrate

        migrate(url)
        self.engine = make_engine(url)
        self.sessions = make_session_factory(self.engine)
        self.users: dict[str, str] = {}
        with self.sessions() as s:
            teams = [create_team(s, f"team{t}").id for t in range(2)]
            s.flush()
            self.users["admin"] = create_user(
                s, username="admin", password="x" * 12, role="admin"
            ).id
            self.users["manager"] = create_user(
                s, username="mgr0", password="x" * 12, role="manager", team_id=teams[0]
            ).id
            for k in range(4):
                self.users[f"rep{k}"] = create_user(
                    s, username=f"rep{k}", password="x" * 12, role="rep", team_id=teams[k % 2]
                ).id
            s.commit()
        self.rng = random.Random(17)
        self.count = 0

    def push(self, n: int) -> float:
        """Push ``n`` new customers (owners round-robin over the reps); seconds taken."""
        from server.accounts import principal_for
        from server.crm import CRM_RULES
        from server.models import User
        from server.repository import apply_push
        from sync_protocol import CRM_SCHEMA, HybridLogicalClock, Mutation

        started = time.perf_counter()
        for start in range(0, n, BATCH):
            rep = f"rep{(start // BATCH) % 4}"
            clock = HybridLogicalClock(f"bench-{rep}")
            with self.sessions() as s:
                user = s.get(User, self.users[rep])
                assert user is not None
                principal = principal_for(s, user, f"dev-{rep}")
                mutations = []
                for _ in range(min(BATCH, n - start)):
                    self.count += 1
                    mutations.append(
                        Mutation(
                            id=f"m-{self.count}",
                            collection="customers",
                            record_id=f"c-{self.count:08d}",
                            op="upsert",
                            fields=_customer(self.rng, self.count),
                            hlc=clock.now().encode(),
                        )
                    )
                out = apply_push(
                    s.connection(),
                    principal,
                    CRM_SCHEMA,
                    mutations,
                    now_ms=int(time.time() * 1000),
                    server_hlc=clock.now().encode,
                    rules=CRM_RULES,
                )
                assert all(r.status == "applied" for r in out.results), out.results[0]
                s.commit()
        return time.perf_counter() - started

    def searches(self, repeats: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        from server.accounts import principal_for
        from server.manager.search import search_rows
        from server.models import User

        out: list[dict[str, Any]] = []
        answers: dict[str, Any] = {}
        for who in ("admin", "manager"):
            for kind, q in SEARCHES:
                times = []
                for i in range(repeats + 1):
                    with self.engine.connect() as conn:
                        from sqlalchemy.orm import Session

                        with Session(bind=conn) as s:
                            user = s.get(User, self.users[who])
                            assert user is not None
                            principal = principal_for(s, user)
                        t0 = time.perf_counter()
                        total, rows = search_rows(conn, principal, "customers", q, page=(0, 50))
                        elapsed = (time.perf_counter() - t0) * 1000
                        conn.rollback()
                    if i:
                        times.append(elapsed)
                answers[f"{who}:{q}"] = [total, [r.id for r in rows]]
                out.append(
                    {
                        "caller": who,
                        "kind": kind,
                        "q": q or "",
                        "matches": total,
                        "median_ms": round(statistics.median(times), 1),
                        "max_ms": round(max(times), 1),
                        "load": _load(),
                    }
                )
                print(
                    f"    {who:8} {kind:14} {q or '':9} {total:6} {out[-1]['median_ms']:7.1f} ms",
                    flush=True,
                )
        return out, answers


def run(kind: str, seed: int, burst: int, repeats: int) -> dict[str, Any]:
    from server.crm.indexing import (
        catch_up_search,
        ensure_search_current,
        search_backlog,
        search_unsettled,
        settle_search,
    )

    out: dict[str, Any] = {"db": kind, "seed": seed, "burst": burst, "load_before": _load()}
    with _database(kind) as url:
        world = World(url)
        engine = world.engine
        try:
            out["seed_push_s"] = round(world.push(seed), 2)
            t0 = time.perf_counter()
            catch_up_search(engine, settle=False)
            stage = time.perf_counter() - t0
            t0 = time.perf_counter()
            settled = settle_search(engine)
            settle = time.perf_counter() - t0
            out["seed_catch_up_ms_per_customer"] = round(stage / seed * 1000, 3)
            out["seed_settle_ms_per_customer"] = round(settle / seed * 1000, 3)
            print(f"  {kind} seed: catch-up {out['seed_catch_up_ms_per_customer']} ms/customer, "
                  f"settle {out['seed_settle_ms_per_customer']} ms/customer ({settled})", flush=True)  # fmt: skip
            out["burst_push_s"] = round(world.push(burst), 2)
            with engine.connect() as conn:
                out["backlog"] = search_backlog(conn)
                t0 = time.perf_counter()
                ensure_search_current(conn)
                out["first_search_catch_up_s"] = round(time.perf_counter() - t0, 2)
                out["unsettled_after_catch_up"] = search_unsettled(conn)
            out["load_after_catch_up"] = _load()
            print(f"  {kind} burst {out['backlog']}: first search's catch-up "
                  f"{out['first_search_catch_up_s']} s; unsettled {out['unsettled_after_catch_up']}", flush=True)  # fmt: skip
            print("  searches with the burst unsettled:", flush=True)
            out["searches_unsettled"], before = world.searches(repeats)
            t0 = time.perf_counter()
            settled = settle_search(engine)
            out["burst_settle_ms_per_customer"] = round(
                (time.perf_counter() - t0) / max(settled, 1) * 1000, 3
            )
            print("  searches settled:", flush=True)
            out["searches_settled"], after = world.searches(repeats)
            out["same_answers"] = before == after
            if kind == "postgres":
                # Right after settling, the table holds the burst twice (the unsettled
                # row versions are dead) and its statistics predate the burst — until
                # autovacuum passes (within a minute or so). The steady state:
                with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                    c.exec_driver_sql("VACUUM ANALYZE record_search")
                print("  searches settled, after VACUUM ANALYZE:", flush=True)
                out["searches_vacuumed"], vacuumed = world.searches(repeats)
                out["same_answers"] = out["same_answers"] and vacuumed == before
            out["load_after"] = _load()
        finally:
            engine.dispose()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--db", default="postgres,sqlite")
    parser.add_argument("--seed", type=int, default=50_000)
    parser.add_argument("--burst", type=int, default=60_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--output", type=Path, default=REPO / "bench" / "results" / "search_backlog.json"
    )
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M:%S")}
    for kind in args.db.split(","):
        results[kind] = run(kind, args.seed, args.burst, args.repeats)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
