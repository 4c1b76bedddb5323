"""Search entries are written after the push, by a catch-up from the change sequence
(:mod:`server.crm.indexing`): a push leaves ``record_search`` behind, yet every reader
finds every committed write, in the right scope; a commit held back is never skipped by
the cursor; two PostgreSQL instances indexing at once neither index a record twice nor
lose one."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from typing import Any, cast

import pytest
from sqlalchemy import Connection, Engine, Table, event, select

from server.accounts import principal_for
from server.crm import CRM_RULES, indexing
from server.crm.indexing import (
    SearchCatchUp,
    catch_up_search,
    read_cursor,
    search_backlog,
    search_pending,
    search_t,
)
from server.db import make_engine, make_session_factory
from server.manager.search import search_rows
from server.models import Record, User
from server.repository import apply_push
from sync_protocol import CRM_SCHEMA, HybridLogicalClock, Mutation
from tests.server.conftest import World, build_world, customer_fields, new_id
from tests.server.console.conftest import Browser
from tests.server.manager.conftest import Web

records_t = cast(Table, Record.__table__)


def entries(engine: Engine, record_ids: list[str]) -> dict[str, tuple[str | None, int]]:
    """record_id -> (owner copy, version) of the search entries of ``record_ids``."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(search_t.c.record_id, search_t.c.owner_id, search_t.c.version).where(
                search_t.c.record_id.in_(record_ids)
            )
        ).all()
    return {r.record_id: (r.owner_id, int(r.version)) for r in rows}


def versions(engine: Engine, collection: str = "customers") -> dict[str, int]:
    """record_id -> version of the live records of ``collection``."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(records_t.c.record_id, records_t.c.version).where(
                records_t.c.collection == collection, records_t.c.deleted.is_(False)
            )
        ).all()
    return {r.record_id: int(r.version) for r in rows}


def _principal(world: World, conn: Connection, name: str) -> Any:
    from sqlalchemy.orm import Session

    with Session(bind=conn) as session:
        user = session.get(User, world.users[name])
        assert user is not None
        return principal_for(session, user)


def found(world: World, name: str, q: str, collection: str = "customers") -> set[str]:
    with world.context.engine.connect() as conn:
        total, rows = search_rows(conn, _principal(world, conn, name), collection, q)
        assert total == len(rows)
        return {r.id for r in rows}


def test_a_push_leaves_the_entry_behind_yet_search_finds_it(quiet_world: World) -> None:
    world, engine = quiet_world, quiet_world.context.engine
    tag = uuid.uuid4().hex[:6]
    rep = world.phone("rep_a1")
    cid = new_id("c")
    fields = {**customer_fields("钱多多"), "company": f"快{tag}"}
    assert rep.push_one("customers", cid, fields)["status"] == "applied"
    # the push wrote the record but no search entry
    assert entries(engine, [cid]) == {}
    with engine.connect() as conn:
        assert search_pending(conn)
    # ...yet the manager API's search finds it at once (it catches up first)
    listed = Web(world, "mgr_a").get("/v1/manager/records/customers", params={"q": f"kuai{tag}"})
    assert listed.status_code == 200, listed.text
    assert [item["id"] for item in listed.json()["items"]] == [cid]
    assert entries(engine, [cid]) == {cid: (world.users["rep_a1"], versions(engine)[cid])}
    with engine.connect() as conn:
        assert not search_pending(conn)
    # an update is found under its new text at once, and no longer under the old one
    assert rep.push_one("customers", cid, {"company": f"慢{tag}"})["status"] == "applied"
    assert found(world, "mgr_a", f"man{tag}") == {cid}
    assert found(world, "mgr_a", f"kuai{tag}") == set()


def test_the_console_lists_lead_and_customer_written_a_moment_ago(quiet_world: World) -> None:
    world, engine = quiet_world, quiet_world.context.engine
    tag = uuid.uuid4().hex[:6]
    rep = world.phone("rep_a1")
    cid, lid = new_id("c"), new_id("l")
    rep.push_one("customers", cid, {**customer_fields("孙悟空"), "company": f"花果{tag}"})
    rep.push_one("leads", lid, {"name": "猪八戒", "status": "new", "company": f"高老{tag}"})
    assert entries(engine, [cid, lid]) == {}
    browser = Browser(world, "mgr_a")
    customers = browser.get("/console/customers", params={"q": f"huaguo{tag}"})
    assert customers.status_code == 200 and cid in customers.text
    # the plain list walks the search table's sort key: the customer is on it too
    assert cid in browser.get("/console/customers").text
    # (catch it up again for the lead: the list above caught up everything at once)
    rep.push_one("leads", lid, {"company": f"高老庄{tag}"})
    leads = browser.get("/console/leads", params={"q": f"gaolaozhuang{tag}"})
    assert leads.status_code == 200 and lid in leads.text


def test_pending_entries_keep_the_scope(quiet_world: World) -> None:
    """Changes the catch-up has not seen yet — a new record reassigned, a deletion — show
    to exactly the people who see them in ``records``."""
    world, engine = quiet_world, quiet_world.context.engine
    tag = uuid.uuid4().hex[:6]
    admin = Web(world, "admin")
    a1, b1 = world.phone("rep_a1"), world.phone("rep_b1")
    moved, gone, kept = new_id("c"), new_id("c"), new_id("c")
    for cid, name in ((moved, "周一"), (gone, "周二"), (kept, "周三")):
        fields = {**customer_fields(name), "company": f"藏{tag}"}
        assert a1.push_one("customers", cid, fields)["status"] == "applied"
    catch_up_search(engine)
    assert found(world, "mgr_a", f"cang{tag}") == {moved, gone, kept}

    # a new record of team A, reassigned to team B before any catch-up saw it
    fresh = new_id("c")
    a1.push_one("customers", fresh, {**customer_fields("周四"), "company": f"藏{tag}"})
    done = admin.post(
        "/v1/manager/customers/reassign",
        json={"customer_ids": [fresh, moved], "new_owner_id": world.users["rep_b1"]},
    )
    assert done.status_code == 200, done.text
    # a deletion not caught up either
    a1.sync_down()
    deleted = a1.push_one(
        "customers", gone, op="delete", base_version=a1.versions[("customers", gone)]
    )
    assert deleted["status"] == "applied"
    with engine.connect() as conn:
        assert search_pending(conn)
    assert found(world, "mgr_a", f"cang{tag}") == {kept}
    assert found(world, "rep_a1", f"cang{tag}") == {kept}
    assert found(world, "mgr_b", f"cang{tag}") == {moved, fresh}
    assert found(world, "rep_b1", f"cang{tag}") == {moved, fresh}
    assert found(world, "admin", f"cang{tag}") == {moved, fresh, kept}
    owner_b = world.users["rep_b1"]
    live = versions(engine)
    assert entries(engine, [moved, fresh, gone, kept]) == {
        moved: (owner_b, live[moved]),
        fresh: (owner_b, live[fresh]),
        kept: (world.users["rep_a1"], live[kept]),
    }
    del b1


# ---- PostgreSQL: late commits, two instances -------------------------------------------


def _push(engine: Engine, user_id: str, record_ids: list[str], **kw: Any) -> None:
    sessions = make_session_factory(engine)
    clock = HybridLogicalClock(f"w-{user_id}")
    with sessions() as s:
        user = s.get(User, user_id)
        assert user is not None
        principal = principal_for(s, user, f"dev-{user_id}")
        mutations = [
            Mutation(
                id=f"m-{rid}",
                collection="customers",
                record_id=rid,
                op="upsert",
                # the whole id: a 6-character tail collided (name + company: a possible
                # duplicate) in ~2 % of runs of the 900-record test below
                fields={**customer_fields(f"客户{rid}"), "company": f"批{rid}"},
                hlc=clock.now().encode(),
            )
            for rid in record_ids
        ]
        out = apply_push(
            s.connection(),
            principal,
            CRM_SCHEMA,
            mutations,
            now_ms=int(time.time() * 1000),
            server_hlc=clock.now().encode,
            rules=CRM_RULES,
            **kw,
        )
        assert all(r.status == "applied" for r in out.results), out.results[0]
        s.commit()


class HeldPush:
    """A push of ``record_id`` held open just before its commit (its version taken, not
    visible) on a thread of its own, until :meth:`commit`."""

    def __init__(self, engine: Engine, user_id: str, record_id: str) -> None:
        self._release, holding = threading.Event(), threading.Event()
        self._errors: list[BaseException] = []

        def hold() -> None:
            holding.set()
            self._release.wait(30)

        def push() -> None:
            try:
                _push(engine, user_id, [record_id], before_commit=hold)
            except BaseException as exc:
                self._errors.append(exc)

        self._thread = threading.Thread(target=push)
        self._thread.start()
        assert holding.wait(30)

    def commit(self) -> None:
        self._release.set()
        self._thread.join(30)
        assert not self._errors, self._errors


@pytest.mark.postgres
def test_the_cursor_never_skips_a_held_commit(postgres_url: str) -> None:
    world, client = build_world(postgres_url, search_index_interval_s=0)
    with client:
        engine = world.context.engine
        held, later = new_id("c"), new_id("c")
        writer = HeldPush(engine, world.users["rep_a1"], held)
        _push(engine, world.users["rep_a2"], [later])  # a higher version, committed first
        first = catch_up_search(engine)
        assert first.indexed == 1 and entries(engine, [held, later]).keys() == {later}
        with engine.connect() as conn:
            assert read_cursor(conn) < versions(engine)[later]  # held back by the writer
        writer.commit()
        assert catch_up_search(engine).indexed == 1  # only the late one: `later` is done
        live = versions(engine)
        assert {k: v for k, (_, v) in entries(engine, [held, later]).items()} == {
            held: live[held],
            later: live[later],
        }
        with engine.connect() as conn:
            assert read_cursor(conn) >= max(live.values())
    world.context.engine.dispose()


@pytest.mark.postgres
def test_a_commit_landing_between_two_batches_of_one_catch_up_is_not_skipped(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first window reads past the horizon (the held version is invisible to it);
    the held push commits before the next window, which starts above the first one and
    so never reads it: the cursor must not move past it for the rest of the catch-up."""
    from server.crm import indexing

    world, client = build_world(postgres_url, search_index_interval_s=0)
    with client:
        engine = world.context.engine
        held, later = new_id("c"), [new_id("c"), new_id("c")]
        writer = HeldPush(engine, world.users["rep_a1"], held)
        for rid in later:  # higher versions, committed first, one push each
            _push(engine, world.users["rep_a2"], [rid])
        one_batch = indexing._catch_up_batch
        calls: list[int] = []

        def then_release(*args: Any) -> int:
            out = one_batch(*args)
            if not calls:  # the fault-injection point: the late commit lands here
                writer.commit()
            calls.append(out)
            return out

        monkeypatch.setattr(indexing, "_catch_up_batch", then_release)
        catch_up_search(engine, batch=1)
        assert len(calls) >= 2
        monkeypatch.undo()
        live = versions(engine)
        with engine.connect() as conn:
            assert read_cursor(conn) < live[held]  # not past the version it never read
            assert search_pending(conn)
        catch_up_search(engine)
        assert {k: v for k, (_, v) in entries(engine, [held, *later]).items()} == {
            rid: live[rid] for rid in [held, *later]
        }
    world.context.engine.dispose()


@pytest.mark.postgres
def test_two_instances_index_each_record_once_and_lose_none(postgres_url: str) -> None:
    world, client = build_world(postgres_url, search_index_interval_s=0)
    with client:
        one = world.context.engine
        other = make_engine(postgres_url)  # the second instance's pool
        reps = [world.users["rep_a1"], world.users["rep_a2"], world.users["rep_b1"]]
        # a backlog, then writers still pushing while both instances index
        _push(one, reps[0], [new_id("c") for _ in range(300)])
        outcomes: list[SearchCatchUp] = []
        errors: list[BaseException] = []
        writing = threading.Event()
        writing.set()
        start = threading.Barrier(2 + len(reps))

        def indexer(engine: Engine) -> None:
            try:
                start.wait(30)
                while writing.is_set() or outcomes[-1:] == [] or _pending(engine):
                    outcomes.append(catch_up_search(engine, batch=40, wait=False))
                    time.sleep(0.001)
            except BaseException as exc:
                errors.append(exc)

        def writer(user_id: str) -> None:
            try:
                start.wait(30)
                for _ in range(5):
                    _push(
                        one if user_id != reps[1] else other,
                        user_id,
                        [new_id("c") for _ in range(40)],
                    )
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=indexer, args=(e,)) for e in (one, other)]
        writers = [threading.Thread(target=writer, args=(u,)) for u in reps]
        for t in threads + writers:
            t.start()
        for t in writers:
            t.join(120)
        writing.clear()
        for t in threads:
            t.join(120)
        assert not errors, errors
        live = versions(one)
        assert len(live) == 300 + len(reps) * 5 * 40
        # every record indexed once — no instance redid another's work — and none lost
        assert sum(o.indexed for o in outcomes) == len(live)
        assert any(o.skipped for o in outcomes)  # they did meet
        assert {k: v for k, (_, v) in entries(one, list(live)).items()} == live
        other.dispose()
    world.context.engine.dispose()


def _pending(engine: Engine) -> bool:
    with engine.connect() as conn:
        return search_pending(conn)


def test_the_background_indexer_stops_at_its_budget_and_readers_do_the_rest(
    quiet_world: World,
) -> None:
    """The background task works for a bounded time per tick (it must not take the cores
    from the pushes); what it leaves is still found by the next search."""
    world, engine = quiet_world, quiet_world.context.engine
    tag = uuid.uuid4().hex[:6]
    rep = world.phone("rep_a1")
    made = [new_id("c") for _ in range(30)]
    rep.push(
        [
            rep.mutation("customers", cid, {**customer_fields(f"吴{i}"), "company": f"吴{tag}"})
            for i, cid in enumerate(made)
        ]
    )
    tick = catch_up_search(engine, batch=10, wait=False, budget_s=0)
    assert (tick.batches, tick.indexed) == (1, 1)  # out of budget at once: one record
    with engine.connect() as conn:
        assert search_pending(conn)
    assert found(world, "mgr_a", f"wu{tag}") == set(made)


def test_a_budget_ends_a_batch_early_and_the_next_tick_goes_on_from_there(
    quiet_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The budget holds to about one record's work, not one batch's (the background tick
    runs beside pushes); the cursor stops where the window was cut, so the next ticks
    index every record exactly once."""
    world, engine = quiet_world, quiet_world.context.engine
    rep = world.phone("rep_a1")
    made = [new_id("c") for _ in range(30)]
    rep.push(
        [rep.mutation("customers", cid, customer_fields(f"冯{i}")) for i, cid in enumerate(made)]
    )
    with engine.connect() as conn:
        backlog = search_backlog(conn)
    assert backlog >= 30
    ticks = itertools.count()
    # every look at the clock is 10 ms later: a budget of 35 ms sees 4 records
    monkeypatch.setattr(indexing, "_clock", lambda: next(ticks) * 0.01)
    outcomes = []
    while True:
        tick = catch_up_search(engine, batch=10, wait=False, budget_s=0.035)
        outcomes.append(tick)
        if tick.indexed == 0:
            break
        assert tick.batches == 1
    assert outcomes[0].indexed == 4  # not the batch of 10
    assert sum(o.indexed for o in outcomes) == backlog  # each once, none skipped
    live = versions(engine)
    assert {k: v for k, (_, v) in entries(engine, made).items()} == {c: live[c] for c in made}
    with engine.connect() as conn:
        assert not search_pending(conn)


def test_a_rebuild_leaves_nothing_pending_and_moves_the_cursor(quiet_world: World) -> None:
    """``reindex_all`` (migration backfill, bench seeding) writes every entry with its
    version and moves the cursor to the horizon: readers' checks then scan nothing."""
    from server.crm.backfill import reindex_all
    from server.repository.state import read_counter

    world, engine = quiet_world, quiet_world.context.engine
    rep = world.phone("rep_a1")
    made = [new_id("c") for _ in range(5)]
    rep.push(
        [rep.mutation("customers", cid, customer_fields(f"郑{i}")) for i, cid in enumerate(made)]
    )
    with engine.begin() as conn:
        reindex_all(conn)
    with engine.connect() as conn:
        assert read_cursor(conn) == read_counter(conn).counter
        assert not search_pending(conn)
    live = versions(engine)
    assert {k: v for k, (_, v) in entries(engine, made).items()} == {c: live[c] for c in made}


def test_a_readers_catch_up_stops_at_what_had_committed_when_it_began(
    quiet_world: World,
) -> None:
    """Under writes faster than indexing a search must still end: it indexes up to the
    newest version committed when it started, not every commit that follows."""
    world, engine = quiet_world, quiet_world.context.engine
    rep = world.phone("rep_a1")
    made = [new_id("c") for _ in range(30)]
    rep.push([rep.mutation("customers", c, customer_fields(f"冯{i}")) for i, c in enumerate(made)])
    live = versions(engine)
    upto = live[made[9]]  # as if the other 20 had committed after the search began
    run = catch_up_search(engine, batch=10, upto=upto)
    assert run.batches == 1
    done = entries(engine, made)
    assert all(done.get(c, (None, 0))[1] == live[c] for c in made if live[c] <= upto)
    with engine.connect() as conn:
        assert search_pending(conn)  # the later ones are left to the next catch-up


def test_a_stop_request_cuts_the_catch_up_and_nothing_is_skipped(quiet_world: World) -> None:
    """The background tick given way to pushes works between them only: it starts
    nothing while a push runs (``stop``) and cuts its window at the next record when one
    starts; what it leaves is done by later ticks, each record once."""
    world, engine = quiet_world, quiet_world.context.engine
    rep = world.phone("rep_a1")
    made = [new_id("c") for _ in range(20)]
    rep.push(
        [rep.mutation("customers", cid, customer_fields(f"蒋{i}")) for i, cid in enumerate(made)]
    )
    with engine.connect() as conn:
        backlog = search_backlog(conn)
        cursor = read_cursor(conn)
    tick = catch_up_search(engine, batch=10, wait=False, budget_s=5, stop=lambda: True)
    assert tick.yielded and (tick.batches, tick.indexed) == (0, 0)
    with engine.connect() as conn:
        assert read_cursor(conn) == cursor and search_backlog(conn) == backlog

    looks = itertools.count()
    # a push starts while the 4th record of the first window is being reached
    tick = catch_up_search(engine, batch=10, wait=False, budget_s=5, stop=lambda: next(looks) >= 4)
    assert (tick.batches, tick.indexed) == (1, 3)
    assert not tick.yielded
    done = tick.indexed
    while (tick := catch_up_search(engine, batch=10, wait=False, budget_s=5)).indexed:
        done += tick.indexed
    assert done == backlog
    live = versions(engine)
    assert {k: v for k, (_, v) in entries(engine, made).items()} == {c: live[c] for c in made}


def test_what_is_pending_is_read_from_the_version_range_above_the_cursor(
    quiet_world: World,
) -> None:
    """Every background tick and every search first asks whether anything is pending:
    on SQLite that read must be the range of ``records.version`` above the cursor (empty
    when all is indexed), not a walk through every searched record by the
    ``(collection, record_id)`` index (64 ms at 112,000 records)."""
    world, engine = quiet_world, quiet_world.context.engine
    rep = world.phone("rep_a1")
    rep.push([rep.mutation("customers", new_id("c"), customer_fields("褚一"))])
    seen: list[tuple[str, Any]] = []

    def note(_conn: Any, _cursor: Any, statement: str, params: Any, *_args: Any) -> None:
        seen.append((statement, params))

    event.listen(engine, "before_cursor_execute", note)
    try:
        with engine.connect() as conn:
            assert search_pending(conn)
            search_backlog(conn)
    finally:
        event.remove(engine, "before_cursor_execute", note)
    reads = [(s, p) for s, p in seen if "LEFT OUTER JOIN record_search" in s]
    assert len(reads) == 2
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as conn:
        for statement, params in reads:
            plan = str(conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params).all())
            assert "SEARCH records USING INDEX ix_records_version (version>?)" in plan, plan
