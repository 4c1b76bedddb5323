"""The PostgreSQL write path takes no lock on a shared row (issue 17), and the
visibility horizon still never lets a pull pass an open writer
(:mod:`server.repository.state`). Lock waits are observed in ``pg_locks`` — a probe,
not a timer."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
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
