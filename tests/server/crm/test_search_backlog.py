"""A search during a backlog (migration 0017, :mod:`server.crm.indexing`): the catch-up a
search runs first writes entries *unsettled* on PostgreSQL — outside the GIN indexes,
which are partial — and a background step settles them later. Every reader must answer
exactly what it answers once everything is settled (same totals, same pages, same
order), in the same scope; settling never waits for a row another transaction holds;
and the grams function of 0017 yields the same keys as the one of 0011."""

from __future__ import annotations

import re
import threading
import uuid
from typing import Any

import pytest
from sqlalchemy import Connection, select, text

from server.accounts import principal_for
from server.crm.indexing import (
    catch_up_search,
    search_t,
    search_unsettled,
    settle_search,
)
from server.manager.search import search_rows
from server.models import User
from tests.server.conftest import World, build_world, customer_fields, new_id
from tests.server.console.conftest import Browser
from tests.server.manager.conftest import Web

PEOPLE = ("admin", "mgr_a", "mgr_b", "rep_a1")
NAMES = ("张伟", "张三", "章三", "李四", "王五", "张伟明", "安娜", "白云", "Zoe Wang", "赵六")


def _principal(world: World, conn: Connection, name: str) -> Any:
    from sqlalchemy.orm import Session

    with Session(bind=conn) as session:
        user = session.get(User, world.users[name])
        assert user is not None
        return principal_for(session, user)


def _answers(world: World, queries: list[str | None]) -> dict[str, Any]:
    """Every reader's answer: the manager API's search function (totals, pages, both
    orders), the manager API over HTTP, the console's customer and lead lists."""
    out: dict[str, Any] = {}
    with world.context.engine.connect() as conn:
        for name in PEOPLE:
            principal = _principal(world, conn, name)
            for q in queries:
                for descending, page in ((False, None), (False, (3, 3)), (True, (0, 3))):
                    total, rows = search_rows(
                        conn, principal, "customers", q, descending=descending, page=page
                    )
                    out[f"{name}|{q}|{descending}|{page}"] = (total, [r.id for r in rows])
                total, rows = search_rows(conn, principal, "leads", q)
                out[f"{name}|{q}|leads"] = (total, [r.id for r in rows])
    web = Web(world, "mgr_a")
    for q in queries:
        params = {"q": q, "limit": 4} if q else {"sort": "pinyin", "limit": 4}
        body = web.get("/v1/manager/records/customers", params=params).json()
        out[f"api|{q}"] = (body["total"], [item["id"] for item in body["items"]])
    browser = Browser(world, "mgr_a")
    ids = re.compile(r"/console/(?:customers|leads)/([cl]-[0-9a-f]{20})")
    for q in queries[:3]:
        for path in ("/console/customers", "/console/leads"):
            page = browser.get(path, params={"q": q or ""})
            assert page.status_code == 200
            out[f"console|{path}|{q}"] = list(dict.fromkeys(ids.findall(page.text)))
    return out


def _unsettled(world: World) -> int:
    with world.context.engine.connect() as conn:
        return search_unsettled(conn)


def test_unsettled_entries_answer_exactly_what_settled_ones_do(
    quiet_world: World, db_url: str
) -> None:
    world, engine = quiet_world, quiet_world.context.engine
    tag = uuid.uuid4().hex[:6]
    phones = {"rep_a1": world.phone("rep_a1"), "rep_b1": world.phone("rep_b1")}
    for i, name in enumerate(NAMES * 2):
        phone = phones["rep_a1" if i % 3 else "rep_b1"]
        fields = {**customer_fields(name), "company": f"快{tag}科技{i}号"}
        assert phone.push_one("customers", new_id("c"), fields)["status"] == "applied"
        if i % 4 == 0:
            lead = {"name": name, "status": "new", "company": f"快{tag}"}
            assert phone.push_one("leads", new_id("l"), lead)["status"] == "applied"
    queries: list[str | None] = ["张", f"kuai{tag}", "zw", "张伟", "zhang", None]
    catch_up_search(engine)  # as a search does first: entries written, not settled
    postgres = db_url.startswith("postgresql")
    if postgres:
        assert _unsettled(world) >= 2 * len(NAMES)
    before = _answers(world, queries)
    assert before["admin|zw|False|None"][0] >= 4  # 张伟 ×2, 张伟明 ×2 (and 安娜? no: an)
    assert before["mgr_b|张|False|None"][0] > 0 and before["rep_a1|张|False|None"][0] > 0
    settled = settle_search(engine)
    assert _unsettled(world) == 0
    assert (settled > 0) == postgres
    after = _answers(world, queries)
    assert after == before


def test_a_reader_catches_up_unsettled_and_the_background_settles(
    quiet_world: World, db_url: str
) -> None:
    """A search's own catch-up leaves the GIN work to the background; the background's
    tick (``wait=False``) settles what it caught up."""
    world, engine = quiet_world, quiet_world.context.engine
    rep = world.phone("rep_a1")
    made = [new_id("c") for _ in range(12)]
    rep.push(
        [
            rep.mutation("customers", c, {"name": f"钱{i}", "status": "potential"})
            for i, c in enumerate(made)
        ]
    )
    postgres = db_url.startswith("postgresql")
    reader = catch_up_search(engine)
    assert reader.indexed == 12 and reader.settled == 0
    assert _unsettled(world) == (12 if postgres else 0)
    more = [new_id("c") for _ in range(5)]
    rep.push(
        [
            rep.mutation("customers", c, {"name": f"孙{i}", "status": "potential"})
            for i, c in enumerate(more)
        ]
    )
    tick = catch_up_search(engine, wait=False)
    assert tick.indexed == 5
    assert tick.settled == (17 if postgres else 0)
    assert _unsettled(world) == 0


@pytest.mark.postgres
def test_settling_skips_rows_another_transaction_holds(postgres_url: str) -> None:
    world, client = build_world(postgres_url, search_index_interval_s=0)
    with client:
        engine = world.context.engine
        rep = world.phone("rep_a1")
        made = [new_id("c") for _ in range(6)]
        rep.push(
            [
                rep.mutation("customers", c, {"name": f"周{i}", "status": "potential"})
                for i, c in enumerate(made)
            ]
        )
        catch_up_search(engine)
        held = made[0]
        done = threading.Event()
        outcome: list[int] = []
        with engine.connect() as holder:
            # a catch-up rewriting this entry holds its row until it commits
            holder.execute(
                text("SELECT 1 FROM record_search WHERE record_id = :r FOR UPDATE"), {"r": held}
            )

            def settle() -> None:
                outcome.append(settle_search(engine, batch=2))
                done.set()

            worker = threading.Thread(target=settle)
            worker.start()
            assert done.wait(20), "settle_search waited for a held row"
            holder.rollback()
        worker.join(20)
        assert outcome == [5]
        with engine.connect() as conn:
            left = conn.execute(select(search_t.c.record_id).where(~search_t.c.settled)).scalars()
            assert list(left) == [held]
        assert settle_search(engine) == 1
    world.context.engine.dispose()


@pytest.mark.postgres
def test_the_grams_of_0017_are_the_keys_of_0011(postgres_url: str) -> None:
    """0017 rewrote ``fieldsync_search_grams`` (each piece once, one pass); a search reads
    the index through ``@>``, so the *set* of keys must be the old one, for every text."""
    import importlib

    m17 = importlib.import_module("server.migrations.versions.0017_search_settle")
    old = m17.OLD_GRAMS.replace("fieldsync_search_grams(", "old_grams(")
    texts = [
        "",
        "a",
        "|",
        "||",
        "a|b",
        "ab|",
        "|ab",
        "张伟|zhangwei|zw",
        "客户 customer 000005|客户customer000005|kehucustomer000005",
        "+86 21 00000005|862100000005",
        "x|y|zz|张|三三三",
        "emoji 😀 mixed|é ü",
    ]
    world, client = build_world(postgres_url, search_index_interval_s=0)
    with client, world.context.engine.begin() as conn:
        conn.exec_driver_sql(old)
        for t in texts:
            new_keys, old_keys = conn.execute(
                text("SELECT fieldsync_search_grams('customers', :t), old_grams('customers', :t)"),
                {"t": t},
            ).one()
            assert set(new_keys) == set(old_keys), t
            assert len(new_keys) == len(set(new_keys)), t  # each piece once
    world.context.engine.dispose()


@pytest.mark.postgres
def test_the_grams_function_is_priced_as_expensive(postgres_url: str) -> None:
    """A call of ``fieldsync_search_grams`` takes ~0.3 ms; priced at PostgreSQL's default
    (100 × 0.0025), the planner — with statistics not yet gathered after a burst — read a
    manager's ``张`` off the owner index and computed the grams of each of 40,000 rows
    (18 s, bench/search_backlog_bench.py); priced at ``COST 100000`` it reads the GIN
    index (40 ms). On a test-sized table both plans are cheap, so the price is what is
    held here."""
    world, client = build_world(postgres_url, search_index_interval_s=0)
    with client, world.context.engine.connect() as conn:
        cost = conn.execute(
            text("SELECT procost FROM pg_proc WHERE proname = 'fieldsync_search_grams'")
        ).scalar_one()
        assert cost >= 10_000
    world.context.engine.dispose()


@pytest.mark.postgres
def test_the_catch_up_skips_the_wal_flush_for_its_own_transactions_only(
    postgres_url: str,
) -> None:
    """Search entries commit without waiting for the WAL flush (derived data, committed
    with the cursor) — set per transaction: the pooled connection a push takes next
    still commits durably."""
    from server.db import make_engine

    world, client = build_world(postgres_url, search_index_interval_s=0)
    with client:
        rep = world.phone("rep_a1")
        rep.push([rep.mutation("customers", new_id("c"), customer_fields("吴一"))])
        one = make_engine(postgres_url, pool_size=1, max_overflow=0)
        seen: list[str] = []

        def batch_setting(_c: Any, cursor: Any, statement: str, *_rest: Any) -> None:
            if statement.startswith("INSERT INTO record_search"):
                cursor.execute("SELECT current_setting('synchronous_commit')")
                seen.append(cursor.fetchone()[0])

        from sqlalchemy import event

        event.listen(one, "after_cursor_execute", batch_setting)
        try:
            outcome = catch_up_search(one, wait=False)
            assert outcome.indexed == 1 and outcome.settled == 1
            assert seen == ["off"]
            with one.connect() as conn:  # the same pooled connection, next transaction
                assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"
        finally:
            one.dispose()
    world.context.engine.dispose()
