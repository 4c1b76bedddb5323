"""Report benchmark: every manager report at 200,000 records, and how SQL reaches JSON.

    .venv/bin/python -m bench.report_bench [--records 200000] [--db postgres] [--quick]

1. **Data**: 5 teams of 10 reps (and a manager each) and an admin; ~238,000 CRM
   records in the proportions of a real field-sales CRM (50,000 customers, 30,000
   contacts, 15,000 leads, 20,000 opportunities, 30,000 stage changes, 40,000
   activities, tickets, orders and lines, campaign members, targets …), stored exactly
   as the sync engine stores them (canonical JSON ``data`` and per-field ``clocks``,
   owner and customer columns), bulk-inserted so the load takes seconds; the CRM keys
   (duplicate keys, search text with pinyin, reminders) rebuilt as the migration does
   (timed); then ``ANALYZE``.
2. **Reports**: a real server (``python -m server serve``); each report is fetched over
   HTTP as the admin (every record) and as one team's manager (a fifth of them):
   ``--repeats`` warm runs after one cold one; median and p90 end to end.
3. **Indexing**: the first catch-up of the reporting table (every record, as after the
   migration) and an incremental one after 200 changes.
4. **Server search** (``GET /v1/manager/records/customers?q=…``) over the 50,000
   customers by characters, full pinyin, initials, digits, a company fragment and one
   character, and the pinyin-ordered list, as the admin (all of them) and a manager (a
   fifth) over HTTP, and in a rep's scope (a fiftieth) in-process — reps have no server
   search route: median of the warm runs, with the 1-min load average.
5. **Strategies** (PostgreSQL): two heavy statements (the customer analysis grouping and
   the live-funnel aggregate, admin scope) with each way SQL could reach the fields —
   unpacking the JSON text per query (``jsonb_to_record``, ``data::jsonb ->> f`` and
   ``data::json ->> f`` per field) — beside the reporting table the reports read.

Writes ``bench/results/reports.json``; ``python -m bench --render-only`` puts it into
``docs/benchmarks.md``. The machine is shared: the JSON records the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from .fleet_bench import percentile, serve  # noqa: E402
from .simulate import database  # noqa: E402

RESULTS = REPO / "bench" / "results" / "reports.json"
PASSWORD = "fieldsync-bench"
TEAMS, REPS_PER_TEAM = 5, 10

#: Records per 200,000 (scaled by --records).
SHAPE = {
    "customers": 50_000,  # the server-search figure is taken at 50,000 customers
    "contacts": 30_000,
    "leads": 15_000,
    "opportunities": 20_000,
    "stage_changes": 30_000,
    "activities": 40_000,
    "tasks": 10_000,
    "contracts": 5_000,
    "tickets": 10_000,
    "quotes": 4_000,
    "quote_lines": 12_000,
    "campaign_members": 8_000,
    "satisfaction_responses": 3_000,
}
STAGES = [("s1", "Lead", "初步接触", 1, 0.1), ("s2", "Qualified", "需求确认", 2, 0.25),
          ("s3", "Proposal", "方案报价", 3, 0.5), ("s4", "Negotiation", "商务谈判", 4, 0.75),
          ("s5", "Won", "赢单", 5, 1.0), ("s6", "Lost", "输单", 6, 0.0)]  # fmt: skip
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂"
INDUSTRIES = ["制造业", "零售", "医疗", "教育", "金融", "物流", "餐饮", "IT"]
NOTE = "客户对新产品很感兴趣，下周安排演示。Interested in the new line; demo next week."


class Loader:
    """Builds the rows of ``records`` the way the sync engine stores them."""

    def __init__(self, rng: random.Random, reps: list[str]) -> None:
        self.rng = rng
        self.reps = reps
        self.version = 0
        self.rows: list[dict[str, Any]] = []
        self.customers: list[tuple[str, str]] = []  # (id, owner)
        self.by_kind: dict[str, list[tuple[str, str, str]]] = {}  # (id, owner, customer)
        self.now_ms = int(time.time() * 1000)

    def add(
        self, collection: str, rid: str, owner: str | None, customer: str | None, f: dict[str, Any]
    ) -> None:
        from server.repository.rows import canonical_json

        self.version += 1
        hlc = f"{self.now_ms:015d}-0000-dev-bench"
        clocks = {k: [hlc, self.version] for k in f}
        self.rows.append(
            {
                "collection": collection,
                "record_id": rid,
                "owner_id": owner,
                "customer_id": customer,
                "version": self.version,
                "deleted": False,
                "data": canonical_json(f),
                "clocks": json.dumps(clocks, sort_keys=True, separators=(",", ":")),
                "created_at_ms": self.now_ms - self.rng.randrange(400 * 86_400_000),
                "updated_at_ms": self.now_ms,
                "updated_by": owner,
            }
        )
        if customer is not None and collection != "customers":
            self.by_kind.setdefault(collection, []).append((rid, owner or "", customer))

    def day(self) -> date:
        return date(2026, 1, 1) + timedelta(days=self.rng.randrange(365))

    def moment(self) -> str:
        return f"{self.day().isoformat()}T{self.rng.randrange(8, 20):02d}:00:00+08:00"

    def name(self) -> str:
        r = self.rng
        return r.choice(SURNAMES) + r.choice(GIVEN) + r.choice(GIVEN)

    def child(self) -> tuple[str, str]:
        return self.rng.choice(self.customers)


def build(loader: Loader, n: dict[str, int]) -> None:
    r, add = loader.rng, loader.add
    for sid, name, zh, pos, p in STAGES:
        add("pipeline_stages", sid, None, None, {"name": name, "name_zh": zh, "position": pos,
            "probability": p, **({"is_won": True} if sid == "s5" else {}),
            **({"is_lost": True} if sid == "s6" else {})})  # fmt: skip
    for i in range(50):
        add("products", f"p{i}", None, None, {"name": f"产品{i}", "sku": f"SKU-{i:03d}",
            "category": r.choice(["hardware", "software", "service"]), "price": 100 + i})  # fmt: skip
    for i in range(20):
        add("campaigns", f"k{i}", None, None, {"name": f"活动{i}", "channel": r.choice(
            ["event", "email", "social"]), "budget": 10000, "cost": r.randrange(5000, 20000)})  # fmt: skip
    for i in range(n["customers"]):
        owner = r.choice(loader.reps)
        cid = f"c{i}"
        add("customers", cid, owner, cid, {"name": loader.name(), "company": f"{loader.name()}科技有限公司",
            "status": r.choice(["potential", "intent", "closed"]), "tier": r.choice(["high", "mid", "low"]),
            "source": r.choice(["web", "referral", "event", "cold_call"]), "industry": r.choice(INDUSTRIES),
            "phone": f"+86 138 {r.randrange(10**8):08d}", "city": "上海", "notes": NOTE,
            "next_follow_up": loader.day().isoformat(), "owner_id": owner})  # fmt: skip
        loader.customers.append((cid, owner))
    _children(loader, n)


def _children(loader: Loader, n: dict[str, int]) -> None:
    r, add = loader.rng, loader.add
    for i in range(n["contacts"]):
        cid, owner = loader.child()
        add("contacts", f"ct{i}", owner, cid, {"customer_id": cid, "name": loader.name(),
            "phone": f"+86 139 {r.randrange(10**8):08d}", "title": "采购经理"})  # fmt: skip
    for i in range(n["leads"]):
        owner = r.choice(loader.reps)
        status = r.choice(["new", "contacted", "qualified", "disqualified", "converted"])
        f = {"name": loader.name(), "company": "某公司", "source": r.choice(["web", "event", "referral"]),
             "status": status, "owner_id": owner}  # fmt: skip
        if r.random() < 0.3:
            f["campaign_id"] = f"k{r.randrange(20)}"
        if status == "converted":
            f["converted_at"] = loader.moment()
        add("leads", f"l{i}", owner, None, f)
    for i in range(n["opportunities"]):
        cid, owner = loader.child()
        stage = r.choice(STAGES)[0]
        status = "won" if stage == "s5" else "lost" if stage == "s6" else "open"
        f = {"customer_id": cid, "name": f"商机{i}", "stage_id": stage, "status": status,
             "amount": r.randrange(1000, 200000), "notes": NOTE}  # fmt: skip
        if status != "open":
            f["closed_at"] = loader.moment()
        if r.random() < 0.7:
            f["product_id"] = f"p{r.randrange(50)}"
        if r.random() < 0.2:
            f["campaign_id"] = f"k{r.randrange(20)}"
        add("opportunities", f"o{i}", owner, cid, f)
    opps = loader.by_kind["opportunities"]
    for i in range(n["stage_changes"]):
        oid, owner, cid = r.choice(opps)
        a, b = sorted(r.sample(range(1, 7), 2))
        add("stage_changes", f"sc{i}", owner, cid, {"customer_id": cid, "opportunity_id": oid,
            "from_stage_id": f"s{a}", "to_stage_id": f"s{b}", "changed_at": loader.moment()})  # fmt: skip
    for i in range(n["activities"]):
        cid, owner = loader.child()
        add("activities", f"a{i}", owner, cid, {"customer_id": cid, "type": r.choice(
            ["call", "visit", "email"]), "occurred_at": loader.moment(), "subject": "回访", "notes": NOTE})  # fmt: skip
    for i in range(n["tasks"]):
        cid, owner = loader.child()
        add("tasks", f"t{i}", owner, cid, {"customer_id": cid, "title": "跟进", "status": r.choice(
            ["open", "done"]), "due_at": loader.moment()})  # fmt: skip
    for i in range(n["contracts"]):
        cid, owner = loader.child()
        add("contracts", f"k-{i}", owner, cid, {"customer_id": cid, "number": f"HT-{i:06d}",
            "status": r.choice(["signed", "active", "expired"]), "amount": r.randrange(10000, 500000),
            "ends_on": (loader.day() + timedelta(days=300)).isoformat(), "remind_days_before": 30})  # fmt: skip
    _service_and_sales(loader, n)


def _service_and_sales(loader: Loader, n: dict[str, int]) -> None:
    r, add = loader.rng, loader.add
    for i in range(n["tickets"]):
        cid, owner = loader.child()
        opened = loader.moment()
        f: dict[str, Any] = {"customer_id": cid, "title": "设备故障", "status": r.choice(["open", "in_progress", "resolved", "closed"]),
             "priority": r.choice(["low", "normal", "high"]), "opened_at": opened,
             "sla_due_at": opened.replace(":00:00", ":30:00"), "assignee_id": owner}  # fmt: skip
        if f["status"] in ("resolved", "closed"):
            f["resolved_at"] = loader.moment()
            f["satisfaction"] = r.randrange(1, 6)
        add("tickets", f"tk{i}", owner, cid, f)
    tickets = loader.by_kind["tickets"]
    for i in range(n["satisfaction_responses"]):
        tid, owner, cid = r.choice(tickets)
        add("satisfaction_responses", f"sr{i}", owner, cid, {"customer_id": cid, "ticket_id": tid,
            "score": r.randrange(1, 6), "responded_at": loader.moment()})  # fmt: skip
    for i in range(n["quotes"]):
        cid, owner = loader.child()
        add("quotes", f"q{i}", owner, cid, {"customer_id": cid, "kind": r.choice(["order", "order", "order", "quote"]),
            "number": f"SO-{i:06d}", "status": r.choice(["sent", "accepted", "fulfilled", "draft"]),
            "ordered_at": loader.moment()})  # fmt: skip
    quotes = loader.by_kind["quotes"]
    for i in range(n["quote_lines"]):
        qid, owner, cid = r.choice(quotes)
        qty, price = r.randrange(1, 20), 100 + r.randrange(50)
        add("quote_lines", f"ql{i}", owner, cid, {"customer_id": cid, "quote_id": qid,
            "product_id": f"p{r.randrange(50)}", "quantity": qty, "unit_price": price,
            "line_total": qty * price})  # fmt: skip
    for i in range(n["campaign_members"]):
        cid, _owner = loader.child()
        add("campaign_members", f"m{i}", None, None, {"campaign_id": f"k{r.randrange(20)}",
            "customer_id": cid, "status": r.choice(["invited", "attended", "converted"]),
            "revenue": r.randrange(0, 5000)})  # fmt: skip
    for month in range(1, 13):
        for rep in loader.reps:
            add("sales_targets", f"tg-{rep}-{month}", rep, None, {"owner_id": rep, "amount": 200000,
                "period_start": f"2026-{month:02d}-01", "period_end": _month_end(month)})  # fmt: skip
    for i in range(200):
        rep = r.choice(loader.reps)
        add("sales_targets", f"tp{i}", rep, None, {"owner_id": rep, "amount": 50000, "product_id":
            f"p{r.randrange(50)}", "period_start": "2026-01-01", "period_end": "2026-12-31"})  # fmt: skip


def _month_end(month: int) -> str:
    following = date(2026 + month // 12, month % 12 + 1, 1)
    return (following - timedelta(days=1)).isoformat()


def prepare(db_url: str, records: int, seed: int) -> dict[str, Any]:
    """Migrate, create the people, bulk-load the records. Returns the load's facts."""
    from sqlalchemy import insert, text

    from server.accounts import create_team, create_user
    from server.auth import hash_password
    from server.db import make_engine, make_session_factory
    from server.migrate import upgrade
    from server.models import Record
    from server.repository.state import set_counter

    upgrade(db_url)
    engine = make_engine(db_url)
    reps: list[str] = []
    pw = hash_password(PASSWORD)
    with make_session_factory(engine)() as session:
        for t in range(TEAMS):
            create_team(session, f"Team {t}", team_id=f"team-{t}")
            create_user(session, username=f"mgr{t}", password=PASSWORD, password_hash=pw,
                        role="manager", team_id=f"team-{t}", user_id=f"u-mgr{t}")  # fmt: skip
            for i in range(REPS_PER_TEAM):
                uid = f"u-rep{t}-{i}"
                create_user(session, username=f"rep{t}-{i}", password=PASSWORD, password_hash=pw,
                            team_id=f"team-{t}", user_id=uid)  # fmt: skip
                reps.append(uid)
        create_user(session, username="admin", password=PASSWORD, password_hash=pw, role="admin",
                    user_id="u-admin")  # fmt: skip
        session.commit()
    scale = records / 200_000
    loader = Loader(random.Random(seed), reps)
    build(loader, {k: max(10, int(v * scale)) for k, v in SHAPE.items()})
    started = time.monotonic()
    with engine.begin() as conn:
        for i in range(0, len(loader.rows), 5000):
            conn.execute(insert(Record.__table__), loader.rows[i : i + 5000])
        set_counter(conn, loader.version)
    load_seconds = round(time.monotonic() - started, 1)
    started = time.monotonic()
    with engine.begin() as conn:
        from server.crm.backfill import reindex_all

        reindex_all(conn)
    keys_seconds = round(time.monotonic() - started, 1)
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()
        size = None
        if engine.dialect.name == "postgresql":
            size = conn.execute(text("SELECT pg_total_relation_size('records')")).scalar()
    engine.dispose()
    return {"records": len(loader.rows), "load_seconds": load_seconds,
            "crm_keys_seconds": keys_seconds, "customers": len(loader.customers),
            "records_table_bytes": size}  # fmt: skip


REPORTS: list[tuple[str, dict[str, str]]] = [
    ("funnel", {}),
    ("rep-performance", {"start": "2026-01-01", "end": "2026-12-31", "period": "month"}),
    ("product-performance", {"start": "2026-01-01", "end": "2026-12-31"}),
    ("customers", {"lang": "zh"}),
    ("campaigns", {}),
    ("tickets", {"as_of": "2026-12-01T00:00:00+00:00"}),
    ("lead-conversion", {}),
    ("contracts-expiring", {"days": "30", "today": "2026-06-01"}),
    ("overdue-follow-ups", {"as_of": "2026-03-01T00:00:00+00:00"}),
]


def _token(client: httpx.Client, username: str) -> str:
    response = client.post("/v1/auth/login", json={"username": username, "password": PASSWORD,
                           "device_id": f"bench-{username}"})  # fmt: skip
    response.raise_for_status()
    return str(response.json()["access_token"])


def time_reports(url: str, repeats: int) -> list[dict[str, Any]]:
    out = []
    with httpx.Client(base_url=url, timeout=120) as client:
        for who in ("admin", "mgr0"):
            headers = {"Authorization": f"Bearer {_token(client, who)}"}
            for path, params in REPORTS:
                times = []
                for i in range(repeats + 1):
                    started = time.perf_counter()
                    response = client.get(f"/v1/manager/reports/{path}", params=params,
                                          headers=headers)  # fmt: skip
                    elapsed = (time.perf_counter() - started) * 1000
                    response.raise_for_status()
                    if i == 0:
                        cold = elapsed
                    else:
                        times.append(elapsed)
                out.append({"report": path, "caller": "admin" if who == "admin" else "manager",
                            "cold_ms": round(cold, 1), "median_ms": round(statistics.median(times), 1),
                            "p90_ms": round(percentile(times, 0.9), 1), "bytes": len(response.content)})  # fmt: skip
                print(f"  {who:6} {path:22} median {out[-1]['median_ms']:7.1f} ms", flush=True)
    return out


#: What a rep types into the search box: a surname, a full name in pinyin, initials,
#: part of a phone number, a company fragment, one character; and the list in pinyin
#: order with no query (``q`` None: ``sort=pinyin``).
SEARCHES: list[tuple[str, str | None]] = [
    ("characters", "张伟"), ("pinyin", "zhangwei"), ("initials", "zw"), ("digits", "13812345"),
    ("company", "keji"), ("one character", "张"), ("pinyin order", None),
]  # fmt: skip
#: Who searches over HTTP: the admin (every customer) and a team's manager (a fifth).
SEARCHERS = (("admin", "admin"), ("mgr0", "manager"))


def time_search(url: str, repeats: int) -> list[dict[str, Any]]:
    out = []
    with httpx.Client(base_url=url, timeout=120) as client:
        for who, caller in SEARCHERS:
            headers = {"Authorization": f"Bearer {_token(client, who)}"}
            for kind, q in SEARCHES:
                params: dict[str, Any] = {"limit": 50}
                params.update({"q": q} if q is not None else {"sort": "pinyin"})
                times: list[float] = []
                for i in range(repeats + 1):
                    started = time.perf_counter()
                    response = client.get("/v1/manager/records/customers", params=params,
                                          headers=headers)  # fmt: skip
                    elapsed = (time.perf_counter() - started) * 1000
                    response.raise_for_status()
                    if i:
                        times.append(elapsed)
                out.append({"kind": kind, "q": q or "", "caller": caller,
                            "matches": response.json()["total"],
                            "median_ms": round(statistics.median(times), 1),
                            "p90_ms": round(percentile(times, 0.9), 1),
                            "loadavg_1min": _loadavg()[:1]})  # fmt: skip
                print(f"  {who:6} search {kind:13} {q or '':10} {out[-1]['matches']:6} matches "
                      f"median {out[-1]['median_ms']:6.1f} ms (load {out[-1]['loadavg_1min']})",
                      flush=True)  # fmt: skip
    return out


def time_search_rep(db_url: str, repeats: int, username: str = "rep0-0") -> list[dict[str, Any]]:
    """A rep's scope (a fiftieth of the customers). Reps have no server search route —
    they search on their phone — so the server's statement is timed in-process: the same
    :func:`server.manager.search.search_rows` the route runs (match, scope, page and the
    page's records), without HTTP."""
    from sqlalchemy import select

    from server.accounts import principal_for
    from server.db import make_engine, make_session_factory
    from server.manager.search import search_rows
    from server.models import User

    engine = make_engine(db_url)
    out = []
    with make_session_factory(engine)() as session:
        user = session.scalars(select(User).where(User.username == username)).one()
        principal = principal_for(session, user)
        conn = session.connection()
        for kind, q in SEARCHES:
            times: list[float] = []
            for i in range(repeats + 1):
                started = time.perf_counter()
                total, rows = search_rows(conn, principal, "customers", q, page=(0, 50))
                [r.out() for r in rows]  # the route serialises the page too
                elapsed = (time.perf_counter() - started) * 1000
                session.rollback()
                conn = session.connection()
                if i:
                    times.append(elapsed)
            out.append({"kind": kind, "q": q or "", "caller": "rep", "matches": total,
                        "median_ms": round(statistics.median(times), 1),
                        "p90_ms": round(percentile(times, 0.9), 1), "http": False,
                        "loadavg_1min": _loadavg()[:1]})  # fmt: skip
            print(f"  {username} search {kind:13} {q or '':10} {total:6} matches "
                  f"median {out[-1]['median_ms']:6.1f} ms in-process", flush=True)  # fmt: skip
    engine.dispose()
    return out


_CUSTOMER_KEYS = ("status", "tier", "source", "industry")


def _strategy_sql(strategy: str) -> dict[str, str]:
    from server.reports.facts import slot
    from server.reports.kinds import NUMBER, TEXT

    keys = ", ".join(_CUSTOMER_KEYS)
    if strategy == "jsonb_to_record":
        customers = (f"SELECT {keys}, count(*) FROM records r, jsonb_to_record(r.data::jsonb) AS "
                     "x(status text, tier text, source text, industry text) WHERE r.collection = "
                     f"'customers' AND NOT r.deleted GROUP BY {keys}")  # fmt: skip
        funnel = ("SELECT stage_id, count(*), sum(amount) FROM records r, jsonb_to_record("
                  "r.data::jsonb) AS x(stage_id text, status text, amount numeric, probability "
                  "numeric) WHERE r.collection = 'opportunities' AND NOT r.deleted AND status = "
                  "'open' GROUP BY stage_id")  # fmt: skip
    elif strategy in ("jsonb_per_field", "json_per_field"):
        cast = "jsonb" if strategy == "jsonb_per_field" else "json"
        pick = ", ".join(f"r.data::{cast} ->> '{k}'" for k in _CUSTOMER_KEYS)
        customers = (f"SELECT {pick}, count(*) FROM records r WHERE r.collection = 'customers' "
                     f"AND NOT r.deleted GROUP BY {pick}")  # fmt: skip
        funnel = (f"SELECT r.data::{cast} ->> 'stage_id', count(*), sum((r.data::{cast} ->> "
                  f"'amount')::numeric) FROM records r WHERE r.collection = 'opportunities' AND "
                  f"NOT r.deleted AND r.data::{cast} ->> 'status' = 'open' GROUP BY 1")  # fmt: skip
    else:  # the reporting table the reports use
        cols = ", ".join(slot("customers", k, TEXT) for k in _CUSTOMER_KEYS)
        customers = (f"SELECT {cols}, count(*) FROM report_facts WHERE collection = 'customers' "
                     f"GROUP BY {cols}")  # fmt: skip
        stage, status = (
            slot("opportunities", "stage_id", TEXT),
            slot("opportunities", "status", TEXT),
        )
        amount = slot("opportunities", "amount", NUMBER)
        funnel = (f"SELECT {stage}, count(*), sum({amount}) FROM report_facts WHERE collection "
                  f"= 'opportunities' AND {status} = 'open' GROUP BY {stage}")  # fmt: skip
    return {"customer_grouping": customers, "funnel_live": funnel}


def time_strategies(db_url: str, repeats: int) -> list[dict[str, Any]]:
    from sqlalchemy import text

    from server.db import make_engine

    engine = make_engine(db_url)
    out = []
    with engine.connect() as conn:
        for strategy in ("jsonb_to_record", "jsonb_per_field", "json_per_field", "report_facts"):
            for name, statement in _strategy_sql(strategy).items():
                times = []
                for _ in range(repeats + 1):
                    started = time.perf_counter()
                    conn.execute(text(statement)).all()
                    times.append((time.perf_counter() - started) * 1000)
                out.append({"strategy": strategy, "query": name,
                            "median_ms": round(statistics.median(times[1:]), 1)})  # fmt: skip
                print(f"  {strategy:16} {name:18} {out[-1]['median_ms']:7.1f} ms", flush=True)
    engine.dispose()
    return out


def time_indexing(db_url: str, changes: int = 200) -> dict[str, Any]:
    """The first catch-up (every record), then one after ``changes`` new versions."""
    from sqlalchemy import text

    from server.db import make_engine
    from server.reports.facts import catch_up
    from server.repository.state import read_counter, set_counter

    engine = make_engine(db_url)
    started = time.perf_counter()
    first = catch_up(engine)
    seconds = time.perf_counter() - started
    with engine.begin() as conn:
        counter = read_counter(conn).counter
        ids = (
            conn.execute(
                text("SELECT id FROM records WHERE collection = 'opportunities' LIMIT :n"),
                {"n": changes},
            )
            .scalars()
            .all()
        )
        for i, pk in enumerate(ids, start=1):
            conn.execute(text("UPDATE records SET version = :v WHERE id = :pk"),
                         {"v": counter + i, "pk": pk})  # fmt: skip
        set_counter(conn, counter + len(ids))
    started = time.perf_counter()
    again = catch_up(engine)
    incremental_ms = (time.perf_counter() - started) * 1000
    engine.dispose()
    return {"seconds": round(seconds, 1), "upserted": first.upserted,
            "incremental_changes": again.upserted, "incremental_ms": round(incremental_ms, 1)}  # fmt: skip


def run(
    kind: str, records: int, repeats: int, seed: int, search_only: bool = False
) -> dict[str, Any]:
    before = _loadavg()
    with tempfile.TemporaryDirectory() as work, database(kind, Path(work)) as url:
        print(f"== {kind}: loading {records:,} records", flush=True)
        facts = prepare(url, records, seed)
        print(f"   loaded {facts['records']:,} in {facts['load_seconds']} s", flush=True)
        index: dict[str, Any] = {}
        if not search_only:
            index = time_indexing(url)
            print(f"   indexed in {index['seconds']} s; {index}", flush=True)
        with serve(url, workers=1) as server:
            reports = [] if search_only else time_reports(server, repeats)
            search = time_search(server, repeats)
        search += time_search_rep(url, repeats)
        strategies = time_strategies(url, repeats) if kind == "postgres" and not search_only else []
    return {"db": kind, **facts, "index": index, "reports": reports, "search": search,
            "strategies": strategies, "loadavg_before": before, "loadavg_after": _loadavg()}  # fmt: skip


def _loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report_bench", description=__doc__)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--db", choices=("postgres", "sqlite", "both"), default="postgres")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--quick", action="store_true", help="10,000 records, 2 repeats")
    parser.add_argument("--search-only", action="store_true",
                        help="load the data, then time the server search only")  # fmt: skip
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--append", action="store_true",
                        help="add this run's databases to the runs already in --output")  # fmt: skip
    args = parser.parse_args(argv)
    records, repeats = (10_000, 2) if args.quick else (args.records, args.repeats)
    kinds = ["postgres", "sqlite"] if args.db == "both" else [args.db]
    before = _loadavg()
    runs = [run(kind, records, repeats, args.seed, args.search_only) for kind in kinds]
    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "cores": os.cpu_count(), "loadavg_before": before, "loadavg_after": _loadavg(),
              "budget_ms": 500, "search_budget_ms": 50, "repeats": repeats,
              "runs": runs}  # fmt: skip
    if args.append and args.output.exists():
        previous = json.loads(args.output.read_text())
        result = {**previous, "runs": [*previous.get("runs", []), *runs]}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
