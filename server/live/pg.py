"""PostgreSQL LISTEN/NOTIFY between server instances.

Each process holds **one listener connection** (psycopg, autocommit, ``LISTEN
fieldsync_live``) and wakes its :class:`~server.live.hub.LiveHub` on every notification;
the hub re-reads the counter and fans out to its own streams in memory.

Its own commits are announced by **one coalesced NOTIFY**: a commit only raises a flag;
a sender task sends at most one ``pg_notify`` per ``interval_s`` (writes in between
ride along), on a second connection of its own (``fieldsync-live-notify/<pid>``),
*after* the writes committed — never inside a write
transaction, where NOTIFY would take PostgreSQL's global notify lock at commit and
serialise every writer of the installation. The payload only says what kind of change
happened (``w`` data, ``a`` accounts); receivers never trust it further.

**Nothing is lost with a connection.** A listener that drops (a restarted database, a
killed backend, a network cut) reconnects with back-off and, once listening again,
wakes the hub, which re-reads the counter: whatever committed meanwhile is announced.
A NOTIFY that could not be sent stays pending and is sent when the database answers
again. The listener pings every ``ping_s`` so a silently dead connection is noticed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from typing import Any

from sqlalchemy import Engine

from .hub import LiveHub

log = logging.getLogger("fieldsync.live")

CHANNEL = "fieldsync_live"
#: ``application_name`` of the listener connection (find it in ``pg_stat_activity``).
APPLICATION = "fieldsync-live"


def libpq_url(engine: Engine) -> str:
    url = engine.url.set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class PgChannel:
    def __init__(
        self,
        hub: LiveHub,
        engine: Engine,
        *,
        interval_s: float,
        ping_s: float = 10.0,
        reconnect_s: float = 0.1,
    ) -> None:
        self.hub = hub
        self.engine = engine
        self.interval_s = interval_s
        self.ping_s = ping_s
        self.reconnect_s = reconnect_s
        self.application = f"{APPLICATION}/{os.getpid()}"
        self.connected = False
        #: Notifications received, NOTIFYs sent, listener (re)connections: for tests.
        self.received = 0
        self.sent = 0
        self.connections = 0
        self._pending = ""
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # ---- sending ----------------------------------------------------------------------

    def local_commit(self, wrote: bool, auth: bool) -> None:
        """A commit of this process (any thread): announce it soon."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        kinds = ("w" if wrote else "") + ("a" if auth else "")
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._queue, kinds)

    def _queue(self, kinds: str) -> None:
        for kind in kinds:
            if kind not in self._pending:
                self._pending += kind
        if self._wake is not None:
            self._wake.set()

    async def _connect(self, role: str) -> Any:
        import psycopg

        return await psycopg.AsyncConnection.connect(
            libpq_url(self.engine),
            autocommit=True,
            application_name=f"{APPLICATION}{role}/{os.getpid()}",
            connect_timeout=5,
        )

    async def sender(self) -> None:
        """Send the coalesced NOTIFYs on a connection of its own (async: a stopping
        server never waits for a thread stuck in the database)."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        last = 0.0
        conn: Any = None
        try:
            while self.hub.running:
                await self._wake.wait()
                self._wake.clear()
                if not self.hub.running:
                    return
                wait = last + self.interval_s - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)  # commits meanwhile join this NOTIFY
                payload, self._pending = self._pending, ""
                if not payload:
                    continue
                try:
                    if conn is None or conn.closed:
                        conn = await self._connect("-notify")
                    async with asyncio.timeout(5):
                        await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
                    self.sent += 1
                except Exception as exc:  # keep it pending; try again shortly
                    log.warning("live: NOTIFY failed: %s", type(exc).__name__)
                    await _close(conn)
                    conn = None
                    self._queue(payload)
                    await asyncio.sleep(0.5)
                last = time.monotonic()
        finally:
            await _close(conn)

    # ---- listening --------------------------------------------------------------------

    async def listener(self) -> None:
        delay = self.reconnect_s
        while self.hub.running:
            try:
                conn = await self._connect("")
            except Exception as exc:
                log.warning("live: listener cannot connect: %s", type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            try:
                await conn.execute(f"LISTEN {CHANNEL}")
                self.connected = True
                self.connections += 1
                delay = self.reconnect_s
                # Whatever committed while nobody listened: re-read, re-check.
                self.hub.kick()
                self.hub.kick_auth()
                await self._listen(conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("live: listener connection lost: %s", type(exc).__name__)
            finally:
                self.connected = False
                await _close(conn)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _listen(self, conn: Any) -> None:
        while self.hub.running:
            async for notify in conn.notifies(timeout=self.ping_s):
                self.received += 1
                if "w" in notify.payload:
                    self.hub.kick()
                if "a" in notify.payload:
                    self.hub.kick_auth()
            await conn.execute("SELECT 1")  # a dead connection raises here


async def _close(conn: Any) -> None:
    """Close without waiting on the connection's lock or a dead peer for long."""
    if conn is None or conn.closed:
        return
    with contextlib.suppress(Exception, asyncio.CancelledError):
        async with asyncio.timeout(2):
            await conn.close()
    if not conn.closed:
        with contextlib.suppress(Exception):
            conn.pgconn.finish()
