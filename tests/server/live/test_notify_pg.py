"""The NOTIFY side of live sync on a real PostgreSQL: a write is announced only after it
committed (never from inside the write transaction), and a burst of commits is
coalesced into at most one NOTIFY per interval."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time

import psycopg

from server.db import make_engine, make_session_factory
from server.live import commits
from server.live.pg import CHANNEL, PgChannel
from server.migrate import upgrade
from server.repository import lock_counter
from tests.conftest import _libpq_url


class _Hub:
    running = True

    def kick(self) -> None: ...

    def kick_auth(self) -> None: ...


def _listen(url: str) -> psycopg.Connection:
    conn = psycopg.connect(_libpq_url(url), autocommit=True)
    conn.execute(f"LISTEN {CHANNEL}")
    return conn


def _drain(conn: psycopg.Connection, seconds: float) -> list[tuple[float, str]]:
    return [(time.monotonic(), n.payload) for n in conn.notifies(timeout=seconds)]


def test_notify_only_after_commit_and_coalesced(postgres_url: str) -> None:
    upgrade(postgres_url)
    engine = make_engine(postgres_url)
    sessions = make_session_factory(engine)
    channel = PgChannel(_Hub(), engine, interval_s=0.05)  # type: ignore[arg-type]
    unhook = commits.install(engine, sessions, channel.local_commit)
    listener = _listen(postgres_url)
    loop = asyncio.new_event_loop()
    sender = loop.create_task(channel.sender())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        time.sleep(0.1)
        # A write transaction held open: nothing is announced until it commits.
        committed = threading.Event()

        def write(hold: float) -> None:
            with sessions() as session:
                lock_counter(session.connection())
                time.sleep(hold)
                session.commit()
            committed.set()

        writer = threading.Thread(target=write, args=(0.6,))
        writer.start()
        early = _drain(listener, 0.4)
        assert early == [] and not committed.is_set()
        writer.join()
        [(_at, payload)] = _drain(listener, 0.5)
        assert payload == "w"

        # 60 commits from 4 threads within ~0.6 s: at most one NOTIFY per 50 ms.
        received: list[tuple[float, str]] = []
        reader = threading.Thread(target=lambda: received.extend(_drain(listener, 2.0)))
        reader.start()
        started = time.monotonic()
        burst = [threading.Thread(target=lambda: [write(0) for _ in range(15)]) for _ in range(4)]
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
    finally:

        async def end() -> None:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(end(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        listener.close()
        unhook()
        engine.dispose()
