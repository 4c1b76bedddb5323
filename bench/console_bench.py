"""Console pages at scale: every page's response time with 50,000 customers and 200,000
activities on PostgreSQL (the aim: p95 ≤ 300 ms each).

The data goes in through the sync engine (``apply_push`` with the server's CRM rules, in
batches, as the reps who own it), so every index a write path keeps (search text and
pinyin sort keys, duplicate keys, report facts, …) is as a real server's: 10 reps in one team; per customer 4 activities (visits, calls, meetings,
notes, spread over 90 days), and in all 10,000 deals, 10,000 tasks, 5,000 leads, 2,000
tickets, 1,000 contracts. A real uvicorn process serves it; one manager
signs in through the console's own form and asks each page ``--repeat`` times after two
warm-up requests. Times are measured at the client over loopback keep-alive: server
time plus well under a millisecond.

    python -m bench.console_bench [--quick] [--db postgres|sqlite] [--output PATH]
                                  [--keep] [--reuse URL] [--only REGEX]

``--keep`` leaves the seeded database (its URL is printed); ``--reuse URL`` measures an
existing one without seeding again.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from sync_protocol import CRM_SCHEMA, HybridLogicalClock, Mutation
from tests.support.server_proc import ServerProcess

REPO = Path(__file__).resolve().parents[1]
PG_ADMIN = os.environ.get(
    "FIELDSYNC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
PASSWORD = "fieldsync-demo"
AIM_MS = 300.0
REPS = 10
BATCH = 2000
SURNAMES = "张王李赵刘陈杨黄周吴徐孙马朱胡郭何林高罗"
GIVEN = ["伟", "芳", "娜", "敏", "静", "磊", "强", "洋", "艳", "杰", "军", "勇", "三", "丽"]
COMPANIES = ["星辰科技", "华夏物流", "金陵医药", "东方制造", "蓝海贸易", "Acme Logistics"]
CITIES = ["上海", "北京", "杭州", "南京", "广州", "深圳"]


def _postgres_db() -> tuple[str, str]:
    import psycopg

    name = f"fs_console_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    return url.replace("postgresql://", "postgresql+psycopg://", 1), name


def _drop_postgres(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ---- data ------------------------------------------------------------------------------


def customer(rng: random.Random, i: int, now: datetime) -> dict[str, Any]:
    name = rng.choice(SURNAMES) + rng.choice(GIVEN) + (rng.choice(GIVEN) if i % 3 else "")
    return {
        "name": f"{name}{i % 1000:03d}" if i % 7 == 0 else name,
        "company": f"{rng.choice(COMPANIES)} {i % 500}",
        "phone": f"+86 21 {5000 + i % 4000} {1000 + i % 9000}",
        "mobile": f"+86 1{rng.randint(30, 89)} {i // 10000:04d} {i % 10000:04d}",
        "email": f"c{i}@example.cn",
        "city": rng.choice(CITIES),
        "status": rng.choice(("potential", "intent", "closed")),
        "tier": rng.choice(("high", "mid", "low")),
        "source": rng.choice(("referral", "web", "event", "cold_call", "partner")),
        "tags": rng.sample(["重点客户", "需回访", "VIP", "logistics", "新客户"], k=2),
        "next_follow_up": (now + timedelta(days=rng.randint(-30, 60))).date().isoformat(),
    }


def lead(rng: random.Random, i: int) -> dict[str, Any]:
    return {
        "name": rng.choice(SURNAMES) + rng.choice(GIVEN),
        "company": f"{rng.choice(COMPANIES)} {i % 700}",
        "phone": f"+86 139 {i // 10000:04d} {i % 10000:04d}",
        "source": rng.choice(("referral", "web", "event", "cold_call", "partner")),
        "status": rng.choice(("new", "contacted", "qualified", "disqualified")),
    }


def activity(rng: random.Random, customer_id: str, author: str, now: datetime) -> dict[str, Any]:
    kind = rng.choice(("visit", "call", "call", "meeting", "note"))
    fields: dict[str, Any] = {
        "customer_id": customer_id,
        "type": kind,
        "occurred_at": (now - timedelta(minutes=rng.randint(0, 90 * 24 * 60))).isoformat(),
        "subject": rng.choice(["需求沟通", "报价跟进", "Follow-up call", "现场拜访"]),
        "notes": "客户希望下周给出报价，关注交付周期。",
        "outcome": rng.choice(("positive", "neutral", "follow_up")),
        "author_id": author,
    }
    if kind == "visit":
        fields["check_in"] = {"lat": 31.2 + rng.random() / 10, "lon": 121.4 + rng.random() / 10}
    return fields


def _push(
    session_factory: Any, principal: Any, rows: list[tuple[str, str, dict[str, Any]]]
) -> None:
    from server.crm import push_rules
    from server.repository import apply_push

    clock = HybridLogicalClock("bench-console")
    for first in range(0, len(rows), BATCH):
        mutations = [
            Mutation(
                id=f"seed-{uuid.uuid4().hex}",
                collection=collection,
                record_id=record_id,
                op="upsert",
                fields=fields,
                hlc=clock.now().encode(),
                # Generated names repeat (张伟 at 星辰科技 …): saved anyway, as a real
                # book with look-alike customers is.
                override=["possible_duplicate"] if collection in ("customers", "leads") else None,
            )
            for collection, record_id, fields in rows[first : first + BATCH]
        ]
        with session_factory() as session:
            outcome = apply_push(
                session.connection(),
                principal,
                CRM_SCHEMA,
                mutations,
                now_ms=int(time.time() * 1000),
                server_hlc=lambda: clock.now().encode(),
                rules=push_rules(CRM_SCHEMA),  # the CRM rules keep the search table, …
            )
            rejected = [r for r in outcome.results if r.status.value == "rejected"]
            if rejected:
                raise RuntimeError(f"seed rejected: {rejected[0].error}")
            session.commit()
            # A bulk load outruns autovacuum: without statistics PostgreSQL's planner
            # scans whole tables for each batch's lookups (issue #19), so refresh them.
            postgres = session.get_bind().dialect.name == "postgresql"
            if postgres and (first // BATCH) % 5 == 0:
                session.connection().exec_driver_sql("ANALYZE")
                session.commit()


def seed(db_url: str, customers: int, activities: int) -> dict[str, int]:
    """The team, then each rep's share pushed as that rep."""
    from server.accounts import create_user, principal_for
    from server.db import make_engine, make_session_factory
    from server.demo import seed_demo
    from server.migrate import upgrade
    from server.models import Record, User

    upgrade(db_url)
    engine = make_engine(db_url)
    factory = make_session_factory(engine)
    rng = random.Random(16)
    now = datetime.now(UTC)
    with factory() as session:
        seed_demo(session, customers=0)
        team = session.get(User, "u-rep1")
        assert team is not None
        for n in range(3, REPS + 1):
            create_user(
                session,
                username=f"rep{n}",
                password=PASSWORD,
                team_id=team.team_id,
                user_id=f"u-rep{n}",
                display_name=f"代表{n}号",
            )
        session.commit()
        reps = [f"u-rep{n}" for n in range(1, REPS + 1)]
        principals = {r: principal_for(session, session.get(User, r), "bench") for r in reps}  # type: ignore[arg-type]
        stages = list(
            session.scalars(select(Record.record_id).where(Record.collection == "pipeline_stages"))
        )
    counts: dict[str, int] = {}
    per_customer = max(1, activities // customers)
    for r_index, rep in enumerate(reps):
        rows: list[tuple[str, str, dict[str, Any]]] = []
        for i in range(r_index, customers, REPS):
            cid = f"bc-{i:06d}"
            rows.append(("customers", cid, customer(rng, i, now)))
            for j in range(per_customer):
                rows.append(("activities", f"ba-{i:06d}-{j}", activity(rng, cid, rep, now)))
            if i % 5 == 0:
                rows.append(("opportunities", f"bo-{i:06d}", _deal(rng, cid, stages, now)))
            if i % 5 == 1:
                due = (now + timedelta(days=rng.randint(-20, 20))).isoformat()
                task = {
                    "customer_id": cid,
                    "title": "回访客户",
                    "status": rng.choice(("open", "done")),
                    "due_at": due,
                }
                rows.append(("tasks", f"bt-{i:06d}", task))
            if i % 25 == 2:
                ticket = {
                    "customer_id": cid,
                    "title": "安装问题",
                    "status": rng.choice(("open", "in_progress", "resolved")),
                    "priority": "normal",
                    "opened_at": now.isoformat(),
                }
                rows.append(("tickets", f"bk-{i:06d}", ticket))
            if (i // REPS) % 10 == 0:  # a tenth of each rep's book
                rows.append(("leads", f"bl-{i:06d}", lead(rng, i)))
            if i % 50 == 3:
                ends = (now + timedelta(days=rng.randint(1, 200))).date().isoformat()
                contract = {
                    "customer_id": cid,
                    "number": f"HT-{i}",
                    "status": "active",
                    "amount": 50000.0,
                    "ends_on": ends,
                }
                rows.append(("contracts", f"bk-ct-{i:06d}", contract))
        _push(factory, principals[rep], rows)
        for collection, _id, _fields in rows:
            counts[collection] = counts.get(collection, 0) + 1
        print(f"  seeded {rep}: {len(rows)} records", flush=True)
    settle(engine)
    engine.dispose()
    return counts


def settle(engine: Any) -> None:
    """The steady state of a server that has run a while after a bulk load: the
    reporting table caught up (a running server does it on its first report) and, on
    PostgreSQL, the tables vacuumed and analysed (autovacuum's work), so counts can use
    index-only scans and the planner knows the tables' sizes."""
    from server.reports import facts

    facts.catch_up(engine)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")


def _deal(rng: random.Random, cid: str, stages: list[str], now: datetime) -> dict[str, Any]:
    status = rng.choice(("open", "open", "open", "won", "lost"))
    fields: dict[str, Any] = {
        "customer_id": cid,
        "name": f"{rng.choice(COMPANIES)} - 云 CRM 专业版",
        "stage_id": rng.choice(stages),
        "amount": float(rng.randint(10, 500) * 1000),
        "status": status,
        "expected_close_date": (now + timedelta(days=rng.randint(1, 120))).date().isoformat(),
    }
    if status != "open":
        fields["closed_at"] = (now - timedelta(days=rng.randint(0, 40))).isoformat()
    return fields


# ---- measuring ---------------------------------------------------------------------------

_TOKEN = re.compile(r'name="login_token" value="([^"]+)"')
_CSRF = re.compile(r'data-csrf="([^"]+)"')


def sign_in(client: httpx.Client) -> str:
    page = client.get("/console/login")
    token = _TOKEN.search(page.text)
    assert token is not None
    answer = client.post(
        "/console/login",
        data={"username": "manager", "password": PASSWORD, "login_token": token.group(1)},
        follow_redirects=True,
    )
    csrf = _CSRF.search(answer.text)
    assert csrf is not None, answer.text[:300]
    return csrf.group(1)


def pages(csrf: str) -> list[tuple[str, Callable[[httpx.Client], httpx.Response]]]:
    def get(path: str) -> Callable[[httpx.Client], httpx.Response]:
        return lambda c: c.get(path)

    def post(path: str, data: dict[str, str]) -> Callable[[httpx.Client], httpx.Response]:
        return lambda c: c.post(path, data={**data, "csrf_token": csrf})

    return [
        ("dashboard", get("/console/")),
        ("customers", get("/console/customers")),
        ("customers, page 400", get("/console/customers?page=400")),
        ("customers, filtered", get("/console/customers?status=intent&tier=high&source=web")),
        ("customers, search 张", get("/console/customers?q=%E5%BC%A0")),
        ("customers, search zs", get("/console/customers?q=zs")),
        ("customers, search phone", get("/console/customers?q=13800")),
        ("customer page", get("/console/customers/bc-000123")),
        ("customer edit form", get("/console/customers/bc-000123/edit")),
        ("leads", get("/console/leads")),
        ("leads, search", get("/console/leads?q=%E7%8E%8B")),
        ("lead page", get("/console/leads/bl-000004")),
        ("pipeline", get("/console/pipeline")),
        ("reassign", get("/console/reassign")),
        ("reassign, find", get("/console/reassign?find=%E7%8E%8B")),
        (
            "reassign preview, a rep's book",
            post(
                "/console/reassign/preview",
                {"mode": "book", "from_owner": "u-rep3", "to_owner": "u-rep4"},
            ),
        ),
        ("conflicts", get("/console/conflicts")),
        ("devices", get("/console/devices")),
        ("users", get("/console/users")),
        ("audit", get("/console/audit")),
        ("audit, filtered", get("/console/audit?action=login.*")),
        ("reports", get("/console/reports")),
        *[
            (f"report: {name}", get(f"/console/reports/{name}"))
            for name in (
                "funnel",
                "performance",
                "leads",
                "campaigns",
                "tickets",
                "contracts",
                "overdue",
            )
        ],
        ("import", get("/console/import")),
    ]


def measure(url: str, repeat: int, only: str | None = None) -> list[dict[str, Any]]:
    results = []
    with httpx.Client(base_url=url, timeout=120) as client:
        csrf = sign_in(client)
        for name, call in pages(csrf):
            if only and not re.search(only, name):
                continue
            for _ in range(2):
                answer = call(client)
                if answer.status_code != 200:
                    raise RuntimeError(f"{name}: {answer.status_code} {answer.text[:300]}")
            times = []
            for _ in range(repeat):
                start = time.perf_counter()
                answer = call(client)
                times.append((time.perf_counter() - start) * 1000)
                assert answer.status_code == 200, (name, answer.status_code)
            times.sort()
            p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
            row = {
                "page": name,
                "p50_ms": round(statistics.median(times), 1),
                "p95_ms": round(p95, 1),
                "max_ms": round(times[-1], 1),
                "bytes": len(answer.content),
                "meets_aim": p95 <= AIM_MS,
            }
            print(f"  {name:36s} p50 {row['p50_ms']:8.1f}  p95 {row['p95_ms']:8.1f} ms", flush=True)
            results.append(row)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 customers (smoke run)")
    parser.add_argument("--db", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--customers", type=int, default=None)
    parser.add_argument("--activities", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "console.json")
    parser.add_argument("--keep", action="store_true", help="keep the seeded database")
    parser.add_argument("--reuse", default=None, help="measure this database, no seeding")
    parser.add_argument("--only", default=None, help="measure only pages matching this regex")
    args = parser.parse_args(argv)
    customers = args.customers or (2000 if args.quick else 50_000)
    activities = args.activities or customers * 4
    load = os.getloadavg()[0]
    pg_name = None
    counts: dict[str, int] = {}
    if args.reuse:
        db_url = args.reuse
    elif args.db == "postgres":
        db_url, pg_name = _postgres_db()
    else:
        db_url = f"sqlite:///{tempfile.mkdtemp()}/console-bench.db"
    try:
        if not args.reuse:
            started = time.monotonic()
            print(
                f"seeding {customers} customers, {activities} activities into {db_url}", flush=True
            )
            counts = seed(db_url, customers, activities)
            print(f"seeded in {time.monotonic() - started:.0f} s", flush=True)
        # Migrates a reused database to head; no scheduled compaction during the timing.
        env = {"FIELDSYNC_COMPACTION_INTERVAL_S": "0"}
        with ServerProcess(db_url, env, startup_timeout_s=300) as server:
            rows = measure(server.url, args.repeat, args.only)
    finally:
        if pg_name and not args.keep:
            _drop_postgres(pg_name)
        elif args.keep:
            print(f"kept: {db_url}")
    result = {
        "bench": "console",
        "database": args.db,
        "customers": customers,
        "activities": activities,
        "records": counts,
        "repeat": args.repeat,
        "aim_p95_ms": AIM_MS,
        "pages": rows,
        "all_meet_aim": all(r["meets_aim"] for r in rows),
        "cpu_count": os.cpu_count(),
        "load_avg_1m_before": round(load, 2),
        "load_avg_1m_after": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
