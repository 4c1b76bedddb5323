"""The NOTIFY side of live sync on a real PostgreSQL.

Sending: a write is announced only after it committed (never from inside the write
transaction), a burst of commits is coalesced into at most one NOTIFY per interval, and
the payloads carry the counter's steps — contiguous, each with the owners it touched.

Receiving: a step that follows on from what the hub holds is applied without a single
query and pokes exactly the streams in its scope; a step after a gap (a notification
this instance missed) is not trusted to cover it and wakes a scan instead.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from typing import Any

import psycopg
from sqlalchemy import Engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from server.accounts import Principal
from server.auth import AccessClaims
from server.db import make_engine, make_session_factory
from server.live import commits
from server.live.hub import Change, LiveHub
from server.live.pg import CHANNEL, PgChannel
from server.migrate import upgrade
from server.repository import SyncCounter, lock_counter, read_counter
from server.repository.state import store_counter
from tests.conftest import _libpq_url


def _listen(url: str) -> psycopg.Connection:
    conn = psycopg.connect(_libpq_url(url), autocommit=True)
    conn.execute(f"LISTEN {CHANNEL}")
    return conn


def _drain(conn: psycopg.Connection, seconds: float) -> list[tuple[float, str]]:
    return [(time.monotonic(), n.payload) for n in conn.notifies(timeout=seconds)]


def _write(sessions: sessionmaker[Session], owner: str | None, hold: float = 0.0) -> int:
    """A committed write of one record owned by ``owner``, as push leaves it."""
    with sessions() as session:
        conn = session.connection()
        state = lock_counter(conn)
        version = state.counter + 1
        conn.execute(
            text(
                "INSERT INTO records (collection, record_id, owner_id, customer_id, version, "
                "deleted, data, clocks, created_at_ms, updated_at_ms, updated_by) VALUES "
                "('customers', :rid, :owner, NULL, :v, false, '{}', '{}', 0, 0, 'x')"
            ),
            {"rid": f"r-{version}", "owner": owner, "v": version},
        )
        store_counter(conn, SyncCounter(version, state.purge_horizon, state.epoch))
        time.sleep(hold)
        session.commit()
    return version


def _steps(payload: str) -> list[list[Any]]:
    kinds, _, body = payload.partition(" ")
    assert kinds == "w", payload
    steps: list[list[Any]] = json.loads(body)["s"]
    return steps


def test_notify_only_after_commit_coalesced_and_carrying_the_steps(postgres_url: str) -> None:
    upgrade(postgres_url)
    engine = make_engine(postgres_url)
    sessions = make_session_factory(engine)
    hub = LiveHub(engine, sessions, poll_s=3600, auth_check_s=3600, max_streams=10)
    channel = PgChannel(hub, engine, interval_s=0.05)
    unhook = commits.install(engine, sessions, channel.local_commit)
    listener = _listen(postgres_url)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(hub.start(channel.sender), loop).result(10)
    try:
        time.sleep(0.2)
        # A write transaction held open: nothing is announced until it commits.
        start = hub.state.counter if hub.state else 0
        writer = threading.Thread(target=_write, args=(sessions, "u-held", 0.6))
        writer.start()
        assert _drain(listener, 0.4) == []
        writer.join()
        [(_at, payload)] = _drain(listener, 0.5)
        epoch = hub.state.epoch if hub.state else ""
        assert _steps(payload) == [[epoch, 0, start, start + 1, ["u-held"], []]]

        # 60 commits from 4 threads within ~0.6 s: at most one NOTIFY per 50 ms, and
        # their steps chain from the first new version to the last, owners and all.
        received: list[tuple[float, str]] = []
        reader = threading.Thread(target=lambda: received.extend(_drain(listener, 2.0)))
        reader.start()
        started = time.monotonic()
        owners = [f"u-{w}" for w in range(4)]
        burst = [
            threading.Thread(target=lambda o=o: [_write(sessions, o) for _ in range(15)])
            for o in owners
        ]
        for t in burst:
            t.start()
        for t in burst:
            t.join()
        elapsed = time.monotonic() - started
        reader.join()
        assert 1 <= len(received) <= elapsed / 0.05 + 2, (len(received), elapsed)
        gaps = [b[0] - a[0] for a, b in itertools.pairwise(received)]
        assert all(gap > 0.03 for gap in gaps), gaps  # read as they arrive
        assert channel.sent == 1 + len(received)
        steps = [step for _at, p in received for step in _steps(p)]
        assert steps[0][2] == start + 1 and steps[-1][3] == start + 61
        assert all(a[3] == b[2] for a, b in itertools.pairwise(steps)), steps
        assert set().union(*(set(s[4]) for s in steps)) == set(owners)
    finally:

        async def end() -> None:
            await hub.stop()

        asyncio.run_coroutine_threadsafe(end(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        listener.close()
        unhook()
        engine.dispose()


PEOPLE = {
    "rep_a": Principal("u-a", "rep", "team-a"),
    "rep_b": Principal("u-b", "rep", "team-b"),
    "mgr_a": Principal("u-m", "manager", "team-a", frozenset({"u-a", "u-m"})),
    "admin": Principal("u-admin", "admin"),
}


def _counting(engine: Engine) -> list[str]:
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(str(a[2])))
    return statements


def test_a_received_step_pokes_its_scope_without_a_query_and_a_gap_is_scanned(
    postgres_url: str,
) -> None:
    upgrade(postgres_url)
    writer_engine = make_engine(postgres_url)
    writes = make_session_factory(writer_engine)
    engine = make_engine(postgres_url)
    hub = LiveHub(
        engine, make_session_factory(engine), poll_s=3600, auth_check_s=3600, max_streams=10
    )
    channel = PgChannel(hub, engine, interval_s=0.05)

    def step(start: int, end: int, owners: list[str | None] | None, evicted: list[str]) -> str:
        assert hub.state is not None
        body = {"s": [[hub.state.epoch, 0, start, end, owners, evicted]]}
        return "w " + json.dumps(body)

    async def scenario() -> None:
        hub.state = await asyncio.to_thread(hub._read)
        streams = {
            name: hub.open(AccessClaims(p.user_id, f"dev-{name}", 2**40), p)
            for name, p in PEOPLE.items()
        }

        def poked() -> set[str]:
            found = {n for n, s in streams.items() if s.wake.is_set()}
            for s in streams.values():
                s.wake.clear()
            return found

        statements = _counting(engine)
        c0 = hub.state.counter
        # Another instance committed c0+1 (rep a's record): applied, no query at all.
        v1 = await asyncio.to_thread(_write, writes, "u-a")
        channel.heard(step(c0, v1, ["u-a"], []))
        assert poked() == {"rep_a", "mgr_a", "admin"}
        assert hub.state.counter == v1 and statements == []
        assert streams["rep_a"].checkpoint == f"v1:{v1}"
        # The same step again (it was ours, or arrived twice): nothing.
        channel.heard(step(c0, v1, ["u-a"], []))
        assert poked() == set() and not hub._kick.is_set()
        # An eviction of rep b's copy in a step of rep a's record: b is poked too.
        v2 = await asyncio.to_thread(_write, writes, "u-a")
        channel.heard(step(v1, v2, ["u-a"], ["u-b"]))
        assert poked() == {"rep_a", "mgr_a", "admin", "rep_b"} and statements == []
        # Reference data: everyone.
        v3 = await asyncio.to_thread(_write, writes, None)
        channel.heard(step(v2, v3, [None], []))
        assert poked() == set(PEOPLE) and statements == []

        # v4 (rep b's) was announced in a notification this instance never got; the
        # next step (rep a's v5) must not be taken as covering it: a scan instead.
        v4 = await asyncio.to_thread(_write, writes, "u-b")
        v5 = await asyncio.to_thread(_write, writes, "u-a")
        channel.heard(step(v4, v5, ["u-a"], []))
        assert poked() == set() and hub.state.counter == v3 and hub._kick.is_set()
        await hub.refresh()
        assert poked() == {"rep_a", "rep_b", "mgr_a", "admin"}
        assert hub.state.counter == v5 and statements

        # Not a step we can read (an older instance, a payload cut short): a scan.
        hub._kick.clear()
        channel.heard("w")
        assert hub._kick.is_set()
        hub._kick.clear()
        channel.heard("w {not json")
        assert hub._kick.is_set()
        # Accounts changed: the credentials check is woken, not the counter.
        hub._kick.clear()
        channel.heard("a")
        assert hub._auth_kick.is_set() and not hub._kick.is_set()

    try:
        asyncio.run(scenario())
        with engine.connect() as conn:
            assert read_counter(conn).counter == hub.state.counter  # type: ignore[union-attr]
    finally:
        engine.dispose()
        writer_engine.dispose()


def test_steps_are_merged_when_contiguous_and_a_payload_too_large_is_a_bare_wake_up(
    sqlite_url: str,
) -> None:
    """What the sender would send (no database involved beyond the hub's engine)."""
    engine = make_engine(sqlite_url)
    hub = LiveHub(
        engine, make_session_factory(engine), poll_s=3600, auth_check_s=3600, max_streams=1
    )
    channel = PgChannel(hub, engine, interval_s=0.05)

    def state(counter: int, epoch: str = "0") -> SyncCounter:
        return SyncCounter(counter, 0, epoch)

    try:
        channel.changed(Change(state(1), state(2), {"u-a"}, set()))
        channel.changed(Change(state(2), state(5), {"u-b", None}, {"u-c"}))
        channel.changed(Change(state(7), state(8), {"u-d"}, set()))  # not contiguous
        channel.changed(Change(None, state(9), None, set()))  # no start: never sent
        assert _steps(channel._payload()) == [
            ["0", 0, 1, 5, [None, "u-a", "u-b"], ["u-c"]],
            ["0", 0, 7, 8, ["u-d"], []],
        ]
        assert channel._payload() == ""  # nothing pending any more
        owners = {f"u-{n:06d}-{'x' * 40}" for n in range(400)}  # ~20 kB of ids
        channel.changed(Change(state(9), state(10), set(owners), set()))
        channel._auth = True
        assert channel._payload() == "wa"
    finally:
        engine.dispose()
