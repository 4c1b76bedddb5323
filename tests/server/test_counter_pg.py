"""The PostgreSQL write path takes no lock on a shared row (issue 17), and the
visibility horizon still never lets a pull pass an open writer
(:mod:`server.repository.state`). Lock waits are observed in ``pg_locks`` — a probe,
not a timer."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy.exc
from sqlalchemy import Connection, Engine, text

from server.db import make_engine
from server.migrate import upgrade
from server.repository.state import Versions, begin_write, lock_counter, read_counter

pytestmark = pytest.mark.postgres


@pytest.fixture
def engine(postgres_url: str) -> Iterator[Engine]:
    upgrade(postgres_url)
    eng = make_engine(postgres_url)
    yield eng
    eng.dispose()


def _pid(conn: Connection) -> int:
    return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _waiting(probe: Connection, pid: int) -> bool:
    """``pid`` waits for a lock (any kind: row, transaction id, advisory)."""
    return bool(
        probe.execute(
            text("SELECT count(*) FROM pg_locks WHERE pid = :p AND NOT granted"), {"p": pid}
        ).scalar_one()
    )


def _run_probing(engine: Engine, work: Callable[[Connection], Any]) -> tuple[bool, Any]:
    """Run ``work`` in a transaction on a thread; report whether it was ever seen
    waiting for a lock before it finished (and its result)."""
    out: dict[str, Any] = {}
    started = threading.Event()

    def run() -> None:
        with engine.connect() as conn:
            out["pid"] = _pid(conn)
            started.set()
            try:
                out["result"] = work(conn)
                conn.commit()
            except BaseException as exc:
                out["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    started.wait(30)
    seen_waiting = False
    with engine.connect() as probe:
        while thread.is_alive():
            if _waiting(probe, out["pid"]):
                seen_waiting = True
                break
            probe.execute(text("SELECT pg_sleep(0.005)"))
            probe.rollback()
    out["thread"] = thread
    return seen_waiting, out


def test_two_pushes_allocate_versions_side_by_side_without_waiting(engine: Engine) -> None:
    with engine.connect() as first:
        begin_write(first)
        a = Versions(first, hint=3)
        held = [a.take() for _ in range(3)]  # first transaction stays open

        def second(conn: Connection) -> list[int]:
            begin_write(conn)
            b = Versions(conn, hint=3)
            return [b.take() for _ in range(3)]

        waited, out = _run_probing(engine, second)
        if waited:  # the broken case: release the first so the thread can finish
            first.rollback()
        out["thread"].join(30)
        assert not waited, "the second writer waited for a lock held by the first"
        assert "error" not in out, out.get("error")
        later = out["result"]
        assert min(later) > max(held)

        # The second committed, the first is open: a pull must not pass the first's mark.
        with engine.connect() as reader:
            assert read_counter(reader).counter < min(held)
        first.commit()
    with engine.connect() as reader:
        assert read_counter(reader).counter >= max(later)


def test_a_pull_horizon_waits_for_the_oldest_open_writer_only(engine: Engine) -> None:
    with engine.connect() as old, engine.connect() as young:
        begin_write(old)
        old_versions = Versions(old)
        v_old = old_versions.take()
        begin_write(young)
        v_young = Versions(young).take()
        assert v_young > v_old
        young.commit()  # young commits first: a late commit of ``old`` is pending
        with engine.connect() as reader:
            horizon = read_counter(reader).counter
        assert horizon < v_old
        old.rollback()  # an abort leaves a gap, which is fine
        with engine.connect() as reader:
            assert read_counter(reader).counter >= v_young


def test_an_exclusive_writer_waits_for_open_pushes_and_pushes_wait_for_it(
    engine: Engine,
) -> None:
    with engine.connect() as push:
        begin_write(push)
        Versions(push).take()

        def exclusive(conn: Connection) -> int:
            return lock_counter(conn).counter

        waited, out = _run_probing(engine, exclusive)
        assert waited, "lock_counter must wait for the open push (manager preconditions)"
        push.commit()
        out["thread"].join(30)
        assert "error" not in out, out.get("error")

    with engine.connect() as manager:
        lock_counter(manager)

        def another_push(conn: Connection) -> None:
            begin_write(conn)

        waited, out = _run_probing(engine, another_push)
        assert waited, "a push must wait while an exclusive writer is open"
        manager.commit()
        out["thread"].join(30)
        assert "error" not in out, out.get("error")


def test_two_concurrent_pushes_cannot_both_create_one_phone(postgres_url: str) -> None:
    """Pushes run side by side on PostgreSQL; the duplicate check of the second waits
    (a lock wait seen in pg_locks) for the first, which holds a customer with the same
    phone open at push.before_commit, and then refuses it as a possible duplicate."""
    import time as _time

    from server.accounts import principal_for
    from server.crm import push_rules
    from server.db import make_session_factory
    from server.models import User
    from server.repository import apply_push
    from sync_protocol import CRM_SCHEMA, HybridLogicalClock, Mutation
    from tests.support.server_proc import create_user_direct

    upgrade(postgres_url)
    ids = [create_user_direct(postgres_url, f"rep{n}", user_id=f"u-rep{n}") for n in (1, 2)]
    eng = make_engine(postgres_url)
    sessions = make_session_factory(eng)
    clock = HybridLogicalClock("test")
    release, at_point = threading.Event(), threading.Event()
    results: dict[int, str] = {}

    def hold() -> None:
        at_point.set()
        release.wait(30)

    pids: dict[int, int] = {}

    def push(n: int, holding: bool) -> None:
        with sessions() as s:
            user = s.get(User, ids[n])
            assert user is not None
            principal = principal_for(s, user, f"dev-{n}")
            pids[n] = _pid(s.connection())
            fields = {"name": f"客户 {n}", "status": "potential", "phone": "+86 138 0000 7777"}
            mutation = Mutation(
                id=f"m-{n}",
                collection="customers",
                record_id=f"c-{n}",
                op="upsert",
                fields=fields,
                hlc=clock.now().encode(),
            )
            out = apply_push(
                s.connection(),
                principal,
                CRM_SCHEMA,
                [mutation],
                now_ms=int(_time.time() * 1000),
                server_hlc=lambda: clock.now().encode(),
                rules=push_rules(CRM_SCHEMA),
                before_commit=hold if holding else None,
            )
            s.commit()
            [result] = out.results
            results[n] = result.error.code.value if result.error else result.status.value

    first = threading.Thread(target=push, args=(0, True))
    first.start()
    with eng.connect() as probe:
        assert at_point.wait(30), results  # the first is at push.before_commit
        assert _holding(probe)  # ... holding its duplicate-key lock
        second = threading.Thread(target=push, args=(1, False))
        second.start()
        waited = False
        while second.is_alive():
            if 1 in pids and _waiting(probe, pids[1]):
                waited = True
                break
            probe.execute(text("SELECT pg_sleep(0.005)"))
            probe.rollback()
    release.set()
    first.join(30)
    second.join(30)
    eng.dispose()
    assert waited, "the second push's duplicate check did not wait for the first"
    assert results == {0: "applied", 1: "possible_duplicate"}, results


def _holding(probe: Connection) -> bool:
    """Some transaction holds the claim of the phone's duplicate key (a row of
    ``duplicate_key_claims``): claiming it here gives up after a short lock wait."""
    from server.crm.keys import duplicate_keys

    [key] = duplicate_keys({"phone": "+86 138 0000 7777"})
    probe.execute(text("SET LOCAL lock_timeout = '100ms'"))
    try:
        probe.execute(
            text(
                "INSERT INTO duplicate_key_claims (h) VALUES (hashtextextended(:k, 0)) "
                "ON CONFLICT (h) DO UPDATE SET h = excluded.h"
            ),
            {"k": key},
        )
    except sqlalchemy.exc.OperationalError:
        return True
    finally:
        probe.rollback()
    return False
