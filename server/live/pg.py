"""PostgreSQL LISTEN/NOTIFY between server instances.

Each process holds **one listener connection** (psycopg, autocommit, ``LISTEN
fieldsync_live``) and hands what it hears to its :class:`~server.live.hub.LiveHub`,
which fans out to its own streams in memory.

**What a commit sends.** A commit of this process wakes its own hub, which scans the
step of the counter (one query) and pokes its streams; every step a scan found is then
announced to the other instances by **one coalesced NOTIFY**: a sender task sends at
most one ``pg_notify`` per ``interval_s`` (steps in between ride along, contiguous ones
merged), on a second connection of its own (``fieldsync-live-notify/<pid>``), *after*
the writes committed — never inside a write transaction, where NOTIFY would take
PostgreSQL's global notify lock at commit and serialise every writer of the
installation. The payload carries each step — its epoch, purge horizon, counter range
and the owner and evicted-user ids it touched — so a receiving hub pokes exactly the
affected streams without a query (:meth:`LiveHub.offer`); a step that does not follow
on from what that hub holds (it missed one) only wakes a scan there. Payload::

    w {"s": [[epoch, purge_horizon, from, to, [owner, …] | null, [evicted user, …]]]}
    a                       (accounts changed: re-check the streams' credentials)
    wa {"s": …}             (both)

A payload too large for NOTIFY (~8 kB) goes out as a bare ``w``: every receiver scans.
A process ignores its own notifications (it has acted on the commit already).

**Nothing is lost with a connection.** A listener that drops (a restarted database, a
killed backend, a network cut) reconnects with back-off and, once listening again,
wakes the hub, which re-reads the counter: whatever committed meanwhile is announced.
A NOTIFY that could not be sent stays pending and is sent when the database answers
again. The listener pings every ``ping_s`` so a silently dead connection is noticed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from typing import Any

from sqlalchemy import Engine

from ..repository import SyncCounter
from .hub import Change, LiveHub

log = logging.getLogger("fieldsync.live")

CHANNEL = "fieldsync_live"
#: PostgreSQL refuses a NOTIFY payload of 8000 bytes or more.
MAX_PAYLOAD = 7900
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
        #: Steps and an accounts change waiting for the next NOTIFY.
        self._steps: list[Change] = []
        self._auth = False
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        #: The backend of the sending connection: its notifications are our own.
        self._sender_pid: int | None = None
        hub.on_change = self.changed

    # ---- sending ----------------------------------------------------------------------

    def local_commit(self, wrote: bool, auth: bool) -> None:
        """A commit of this process (any thread): scan it here, announce it soon."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._local, wrote, auth)

    def _local(self, wrote: bool, auth: bool) -> None:
        if wrote:
            self.hub.kick()  # its scan hands the step to :meth:`changed`
        if auth:
            self.hub.kick_auth()
            self._auth = True
            self._signal()

    def changed(self, change: Change) -> None:
        """A step this process's hub scanned: pass it on (event loop only)."""
        if change.before is None:
            return
        last = self._steps[-1] if self._steps else None
        if last is not None and _follows(last, change):
            owners = (
                None
                if last.owners is None or change.owners is None
                else last.owners | change.owners
            )
            self._steps[-1] = Change(
                last.before, change.state, owners, last.evicted | change.evicted
            )
        else:
            self._steps.append(change)
        self._signal()

    def _signal(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def _payload(self) -> str:
        """What is pending, as one NOTIFY payload (and nothing pending any more)."""
        steps, self._steps = self._steps, []
        auth, self._auth = self._auth, False
        kinds = ("w" if steps else "") + ("a" if auth else "")
        if not steps:
            return kinds
        body = json.dumps({"s": [_step(c) for c in steps]}, separators=(",", ":"))
        payload = f"{kinds} {body}"
        return payload if len(payload.encode()) <= MAX_PAYLOAD else kinds

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
                    await asyncio.sleep(wait)  # steps meanwhile join this NOTIFY
                if not self._steps and not self._auth:
                    continue
                steps, auth = list(self._steps), self._auth
                payload = self._payload()
                try:
                    if conn is None or conn.closed:
                        conn = await self._connect("-notify")
                        self._sender_pid = conn.info.backend_pid
                    async with asyncio.timeout(5):
                        await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
                    self.sent += 1
                except Exception as exc:  # keep it pending; try again shortly
                    log.warning("live: NOTIFY failed: %s", type(exc).__name__)
                    await _close(conn)
                    conn = None
                    self._steps[:0] = steps
                    self._auth = self._auth or auth
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
                if notify.pid == self._sender_pid:
                    continue  # our own: acted on already
                self.received += 1
                self.heard(notify.payload)
            await conn.execute("SELECT 1")  # a dead connection raises here

    def heard(self, payload: str) -> None:
        """One notification of another process (event loop only)."""
        kinds, _, body = payload.partition(" ")
        if "a" in kinds:
            self.hub.kick_auth()
        if "w" not in kinds:
            return
        try:
            steps = [_change(step) for step in json.loads(body)["s"]] if body else []
        except (ValueError, KeyError, TypeError, IndexError):
            steps = []
        if not steps:
            self.hub.kick()  # no step (too large, an older instance): scan
            return
        for step in steps:
            self.hub.offer(step)


def _follows(last: Change, change: Change) -> bool:
    before = change.before
    return before is not None and (
        before.counter,
        before.epoch,
        before.purge_horizon,
    ) == (last.state.counter, last.state.epoch, last.state.purge_horizon)


def _step(change: Change) -> list[Any]:
    assert change.before is not None
    owners = None if change.owners is None else sorted(change.owners, key=lambda o: o or "")
    return [
        change.state.epoch,
        change.state.purge_horizon,
        change.before.counter,
        change.state.counter,
        owners,
        sorted(change.evicted),
    ]


def _change(step: list[Any]) -> Change:
    epoch, horizon, start, end, owners, evicted = step
    before = SyncCounter(int(start), int(horizon), str(epoch))
    state = SyncCounter(int(end), int(horizon), str(epoch))
    found = None if owners is None else {None if o is None else str(o) for o in owners}
    return Change(before, state, found, {str(u) for u in evicted})


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
