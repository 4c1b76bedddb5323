"""One process's event streams and what wakes them.

The hub never trusts a message about *what* changed: every wake-up (a local commit, a
PostgreSQL notification, a reconnected listener, the periodic poll) only makes it
re-read the committed counter (:func:`~server.repository.read_counter`). When the
counter moved from ``a`` to ``b`` it asks which owners' records and which users'
evictions got versions in ``(a, b]`` (index range scans on ``version``) and pokes the
streams whose scope covers one of them. A lost notification therefore costs latency,
never a change: the next wake-up of any kind covers everything up to the counter.

Streams are re-checked against the database every ``auth_check_s`` (one query for all
of them, through :func:`server.deps.check_token`, the rule every request obeys) and at
once when a notification says accounts changed; a stream whose token no longer holds
is closed with the error a request would have got. A stream also ends when its access
token expires (the device refreshes and reconnects).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from sync_protocol import ErrorCode, ProtocolError

from ..accounts import Principal, principal_for
from ..auth import AccessClaims
from ..deps import check_token
from ..models import Device, User
from ..repository import SyncCounter, read_counter
from ..repository.pull import format_checkpoint

log = logging.getLogger("fieldsync.live")
_T = TypeVar("_T")

#: Beyond this many versions in one step the hub pokes every stream instead of asking
#: which owners changed (after a long outage, a restore, a bulk import).
SCAN_LIMIT = 50_000

_OWNERS = text("SELECT DISTINCT owner_id FROM records WHERE version > :a AND version <= :b")
_EVICTED = text("SELECT DISTINCT user_id FROM evictions WHERE version > :a AND version <= :b")


async def wait_event(event: asyncio.Event, timeout_s: float) -> bool:
    """``event.wait()`` for at most ``timeout_s``; True when it was set. (Not
    ``asyncio.wait_for``: on Python 3.11 it can swallow a cancellation that races with
    the event, and a stopping server would then wait on that task for ever.)"""
    try:
        async with asyncio.timeout(timeout_s):
            await event.wait()
    except TimeoutError:
        return False
    return True


def checkpoint_of(state: SyncCounter) -> str:
    """The checkpoint a pull reaching ``state.counter`` answers."""
    return format_checkpoint(state.counter, state.epoch, state.purge_horizon)


@dataclass(eq=False)
class Stream:
    """One connected device. The hub sets ``checkpoint`` (the newest to announce) or
    ``closed`` (an error to end with) and sets ``wake``."""

    claims: AccessClaims
    principal: Principal
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    checkpoint: str | None = None
    announced: str | None = None
    closed: ProtocolError | None = None

    @property
    def device_id(self) -> str:
        return self.claims.device_id

    def sees(self, owners: set[str | None] | None, evicted: set[str]) -> bool:
        if owners is None:
            return True
        if self.principal.user_id in evicted:
            return True
        return any(self.principal.sees_owner(owner) for owner in owners)

    def announce(self, checkpoint: str) -> None:
        self.checkpoint = checkpoint
        self.wake.set()

    def close(self, error: ProtocolError) -> None:
        if self.closed is None:
            self.closed = error
            self.wake.set()


@dataclass(slots=True)
class Change:
    """What a refresh found: the new state and whose scopes it touches."""

    state: SyncCounter
    #: Owners of changed records (None: reference data); ``None``: poke everyone.
    owners: set[str | None] | None
    evicted: set[str]


class LiveHub:
    """Streams of one process. Thread-safe entry points: :meth:`kick_threadsafe`."""

    def __init__(
        self,
        engine: Engine,
        sessions: sessionmaker[Session],
        *,
        poll_s: float,
        auth_check_s: float,
        max_streams: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.sessions = sessions
        self.poll_s = poll_s
        self.auth_check_s = auth_check_s
        self.max_streams = max_streams
        self.clock = clock
        self.streams: set[Stream] = set()
        self.state: SyncCounter | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        #: Between :meth:`start` and :meth:`stop`; the loops end when it turns false.
        self.running = False
        self._kick = asyncio.Event()
        self._auth_kick = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        #: The hub's own database threads (one refresh and one check at a time): a
        #: storm of streams (re)connecting — each authenticated on the default
        #: executor — never delays a refresh or a check.
        self._executor: ThreadPoolExecutor | None = None
        #: Refreshes that found a change (tests and metrics).
        self.refreshes = 0
        #: Called with each change found (the PostgreSQL channel's statistics, tests).
        self.on_change: Callable[[Change], None] | None = None

    # ---- lifecycle --------------------------------------------------------------------

    async def start(self, *extra: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self.loop = asyncio.get_running_loop()
        self.running = True
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="fieldsync-live")
        self._kick = asyncio.Event()
        self._auth_kick = asyncio.Event()
        with contextlib.suppress(Exception):  # the database may be down; the loop retries
            self.state = await self._db(self._read)
        for job in (self._refresh_loop, self._auth_loop, *extra):
            self._tasks.append(asyncio.create_task(job()))

    async def stop(self) -> None:
        self.running = False
        self._kick.set()
        self._auth_kick.set()
        for task in self._tasks:
            task.cancel()
        if self._tasks:  # bounded: shutting down never hangs on a stuck task
            await asyncio.wait(self._tasks, timeout=3)
        self._tasks.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        for stream in list(self.streams):
            stream.close(
                ProtocolError("the server is shutting down", code=ErrorCode.SERVICE_UNAVAILABLE)
            )

    # ---- wake-ups ---------------------------------------------------------------------

    def kick(self) -> None:
        """Re-read the counter soon (event loop only)."""
        self._kick.set()

    def kick_auth(self) -> None:
        """Re-check every stream's credentials soon (event loop only)."""
        self._auth_kick.set()

    def kick_threadsafe(self, *, auth: bool = False) -> None:
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop is closing
            loop.call_soon_threadsafe(self.kick_auth if auth else self.kick)

    # ---- streams ----------------------------------------------------------------------

    def open(self, claims: AccessClaims, principal: Principal) -> Stream:
        if len(self.streams) >= self.max_streams:
            raise ProtocolError(
                "this server holds as many event streams as it may; poll instead",
                code=ErrorCode.SERVICE_UNAVAILABLE,
                details={"max_streams": self.max_streams},
            )
        stream = Stream(claims, principal)
        self.streams.add(stream)
        return stream

    def discard(self, stream: Stream) -> None:
        self.streams.discard(stream)

    async def current_checkpoint(self) -> str:
        """The checkpoint for a new stream's ``ready``: the hub's own state, without a
        query (a reconnect storm costs no extra reads). Call it right after :meth:`open`:
        anything committed beyond that state is announced to the already registered
        stream by the refresh that finds it."""
        state = self.state
        if state is None:  # the database was unreachable at start: ask it now
            state = await asyncio.to_thread(self._read)
        return checkpoint_of(state)

    # ---- the counter ------------------------------------------------------------------

    async def _db(self, job: Callable[..., _T], *args: Any) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, job, *args)

    def _read(self) -> SyncCounter:
        with self.engine.connect() as conn:
            return read_counter(conn)

    def _scan(self, before: SyncCounter | None) -> Change | None:
        with self.engine.connect() as conn:
            state = read_counter(conn)
            if before is None:
                return Change(state, None, set())
            if (state.counter, state.epoch, state.purge_horizon) == (
                before.counter,
                before.epoch,
                before.purge_horizon,
            ):
                return None
            span = {"a": before.counter, "b": state.counter}
            if (
                state.epoch != before.epoch  # a restore: every device must resync
                or state.purge_horizon != before.purge_horizon  # a purge: some must
                or not 0 <= state.counter - before.counter <= SCAN_LIMIT
            ):
                return Change(state, None, set())
            owners: set[str | None] = {row[0] for row in conn.execute(_OWNERS, span)}
            evicted = {str(row[0]) for row in conn.execute(_EVICTED, span)}
            return Change(state, owners, evicted)

    async def refresh(self) -> Change | None:
        change = await self._db(self._scan, self.state)
        if change is None:
            return None
        self.state = change.state
        self.refreshes += 1
        checkpoint = checkpoint_of(change.state)
        for stream in list(self.streams):
            if stream.sees(change.owners, change.evicted):
                stream.announce(checkpoint)
        if self.on_change is not None:
            self.on_change(change)
        return change

    async def _refresh_loop(self) -> None:
        delay = 0.05
        while self.running:
            await wait_event(self._kick, self.poll_s)
            self._kick.clear()
            if not self.running:
                return
            try:
                await self.refresh()
                delay = 0.05
            except Exception as exc:  # database down: keep the state, try again
                log.warning("live: reading the change counter failed: %s", type(exc).__name__)
                self._kick.set()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    # ---- credentials ------------------------------------------------------------------

    def _check(self, streams: list[Stream]) -> dict[Stream, ProtocolError | Principal]:
        """Each stream's verdict: the error that ends it, or its current scope."""
        ids = sorted({s.device_id for s in streams})
        verdicts: dict[Stream, ProtocolError | Principal] = {}
        with self.sessions() as session:
            rows: dict[str, tuple[Device, User]] = {}
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                query = (
                    select(Device, User)
                    .join(User, User.id == Device.user_id)
                    .where(Device.id.in_(chunk))
                )
                rows.update({d.id: (d, u) for d, u in session.execute(query).tuples()})
            principals: dict[str, Principal] = {}
            now = self.clock()
            for stream in streams:
                found = rows.get(stream.device_id)
                try:
                    if found is None:
                        raise ProtocolError("unknown device", code=ErrorCode.UNAUTHORIZED)
                    device, user = found
                    check_token(stream.claims, user, device)
                    if stream.claims.expires_at <= now:
                        raise ProtocolError(
                            "access token expired; use the refresh token",
                            code=ErrorCode.TOKEN_EXPIRED,
                            details={"expired_at": stream.claims.expires_at},
                        )
                except ProtocolError as refused:
                    verdicts[stream] = refused
                    continue
                if user.id not in principals:
                    principals[user.id] = principal_for(session, user, None)
                verdicts[stream] = principals[user.id]
            session.rollback()
        return verdicts

    async def check_streams(self) -> int:
        """Close the streams whose credentials no longer hold; returns how many."""
        streams = [s for s in self.streams if s.closed is None]
        if not streams:
            return 0
        verdicts = await self._db(self._check, streams)
        closed = 0
        for stream, verdict in verdicts.items():
            if isinstance(verdict, ProtocolError):
                stream.close(verdict)
                closed += 1
            else:
                stream.principal = _with_device(verdict, stream.device_id)
        return closed

    async def _auth_loop(self) -> None:
        while self.running:
            await wait_event(self._auth_kick, self.auth_check_s)
            self._auth_kick.clear()
            if not self.running:
                return
            try:
                await self.check_streams()
            except Exception as exc:
                log.warning("live: checking stream credentials failed: %s", type(exc).__name__)
                await asyncio.sleep(1.0)


def _with_device(principal: Principal, device_id: str) -> Principal:
    from dataclasses import replace

    return replace(principal, device_id=device_id)


def describe(hub: LiveHub) -> dict[str, Any]:
    """Numbers for health checks and tests."""
    return {
        "streams": len(hub.streams),
        "counter": hub.state.counter if hub.state else None,
        "refreshes": hub.refreshes,
    }
