"""One process's event streams and what wakes them.

The hub announces only what it read from the database itself or what another instance
read there: every change is a step of the committed counter
(:func:`~server.repository.read_counter`) from ``a`` to ``b`` plus the owners whose
records and the users whose evictions got versions in ``(a, b]``. A *scan* (after a
local commit, a gap, a reconnected listener, the periodic poll) re-reads the counter
and asks for those owners (one index range scan on ``version``); a step another
instance scanned arrives in its NOTIFY payload (:mod:`.pg`) and is applied without a
query when it starts at or before this hub's counter — otherwise it is treated as a
mere wake-up and scanned. A lost notification therefore costs latency, never a change:
the next scan of any kind covers everything up to the counter.

**Fan-out in memory.** Streams are indexed by the ``owner_id`` values their scope
covers (:func:`server.scope.visible_owners`, the rule every pull obeys), by user, and
"everything" (admins); a step pokes the union of its owners' entries — its cost grows
with the streams it pokes, not with the streams held.

Every ``auth_check_s`` (and at once when a notification says accounts changed) the hub
reads the *auth generation* — raised by database triggers on every change a token is
checked against (:mod:`server.authcache`). While it stands still that one scalar is the
whole check (plus expiry, in memory). When it moved, every stream is re-checked against
the rows in a fixed handful of queries whatever their number (the device and user rows
in one, the teams managers lead and their members in two more) through
:func:`server.deps.check_token`, the rule every request obeys; a stream whose token no
longer holds is closed with the error a request would have got. A stream also ends when
its access token expires (the device refreshes and reconnects).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from types import SimpleNamespace
from typing import Any, TypeVar

from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from sync_protocol import ErrorCode, ProtocolError

from ..accounts import Principal, principal_for
from ..auth import AccessClaims
from ..deps import check_token
from ..models import Device, Team, User
from ..repository import SyncCounter, read_counter
from ..repository.pull import format_checkpoint
from ..scope import visible_owners

log = logging.getLogger("fieldsync.live")
_T = TypeVar("_T")

#: Beyond this many versions in one step the hub pokes every stream instead of asking
#: which owners changed (after a long outage, a restore, a bulk import).
SCAN_LIMIT = 50_000

#: Owners of changed records and users of evictions in one round trip.
_TOUCHED = text(
    "SELECT DISTINCT 'o', owner_id FROM records WHERE version > :a AND version <= :b "
    "UNION ALL "
    "SELECT DISTINCT 'u', user_id FROM evictions WHERE version > :a AND version <= :b"
)
#: What :func:`server.deps.check_token` reads, for many devices at once.
_CREDENTIALS = select(
    Device.id,
    Device.user_id,
    Device.revoked_at,
    Device.wipe,
    Device.token_generation,
    User.active,
    User.token_generation,
    User.role,
    User.team_id,
).join(User, User.id == Device.user_id)
_CHUNK = 500


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


def _same_history(a: SyncCounter, b: SyncCounter) -> bool:
    return (a.epoch, a.purge_horizon) == (b.epoch, b.purge_horizon)


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
    #: The index entries it sits in (``None``: everything) — :class:`ScopeIndex`.
    keys: list[str] | None = field(default=None, repr=False)

    @property
    def device_id(self) -> str:
        return self.claims.device_id

    def sees(self, owners: set[str | None] | None, evicted: set[str]) -> bool:
        """The rule itself, stream by stream (:class:`ScopeIndex` is the fast form)."""
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


class ScopeIndex:
    """Streams by the ``owner_id`` values they see, by user, and "sees everything".

    :meth:`poked` answers exactly what :meth:`Stream.sees` would, stream by stream, at
    the cost of the streams it returns."""

    def __init__(self) -> None:
        self.streams: set[Stream] = set()
        self.everything: set[Stream] = set()
        self.by_owner: dict[str, set[Stream]] = {}
        self.by_user: dict[str, set[Stream]] = {}

    def __len__(self) -> int:
        return len(self.streams)

    def __iter__(self) -> Any:
        return iter(self.streams)

    def add(self, stream: Stream) -> None:
        self.streams.add(stream)
        self.by_user.setdefault(stream.principal.user_id, set()).add(stream)
        stream.keys = visible_owners(stream.principal)
        if stream.keys is None:
            self.everything.add(stream)
            return
        for owner in stream.keys:
            self.by_owner.setdefault(owner, set()).add(stream)

    def discard(self, stream: Stream) -> None:
        if stream not in self.streams:
            return
        self.streams.discard(stream)
        _unlink(self.by_user, stream.principal.user_id, stream)
        if stream.keys is None:
            self.everything.discard(stream)
        else:
            for owner in stream.keys:
                _unlink(self.by_owner, owner, stream)

    def rescope(self, stream: Stream, principal: Principal) -> None:
        """``stream``'s scope is now ``principal``'s."""
        if principal == stream.principal:
            return
        held = stream in self.streams
        self.discard(stream)
        stream.principal = principal
        if held:
            self.add(stream)

    def poked(self, owners: set[str | None] | None, evicted: Iterable[str]) -> set[Stream]:
        if owners is None or None in owners:  # reference data: everyone sees it
            return set(self.streams)
        found = set(self.everything) if owners else set()
        for owner in owners:
            found.update(self.by_owner.get(owner, ()))  # type: ignore[arg-type]
        for user in evicted:
            found.update(self.by_user.get(user, ()))
        return found


def _unlink(index: dict[str, set[Stream]], key: str, stream: Stream) -> None:
    entry = index.get(key)
    if entry is not None:
        entry.discard(stream)
        if not entry:
            del index[key]


@dataclass(slots=True)
class Change:
    """One step of the counter and whose scopes it touches."""

    #: Where the step starts (``None``: unknown — the hub had no state yet).
    before: SyncCounter | None
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
        self.streams = ScopeIndex()
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
        #: Scans that found a change, steps applied from other instances, and stream
        #: credential checks (tests and metrics).
        self.refreshes = 0
        self.applied = 0
        self.checks = 0
        #: The auth generation (``auth_state``, raised by triggers on every change a
        #: token is checked against) the streams were last checked under.
        self.checked_generation: int | None = None
        #: Called with each change a scan found and applied (the PostgreSQL channel
        #: passes it on to the other instances).
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
                return Change(None, state, None, set())
            if (state.counter, state.epoch, state.purge_horizon) == (
                before.counter,
                before.epoch,
                before.purge_horizon,
            ):
                return None
            if (
                not _same_history(state, before)  # a restore or a purge: every device
                or not 0 <= state.counter - before.counter <= SCAN_LIMIT
            ):
                return Change(before, state, None, set())
            span = {"a": before.counter, "b": state.counter}
            owners: set[str | None] = set()
            evicted: set[str] = set()
            for kind, value in conn.execute(_TOUCHED, span):
                if kind == "o":
                    owners.add(value)
                else:
                    evicted.add(str(value))
            return Change(before, state, owners, evicted)

    def _fan_out(self, change: Change) -> int:
        checkpoint = checkpoint_of(change.state)
        poked = self.streams.poked(change.owners, change.evicted)
        for stream in poked:
            stream.announce(checkpoint)
        return len(poked)

    async def refresh(self) -> Change | None:
        """Scan: re-read the counter and poke whoever the step touches."""
        before = self.state
        change = await self._db(self._scan, before)
        if change is None:
            return None
        current = self.state
        if current is not before and current is not None:
            # A step from another instance landed while this scan ran.
            if not _same_history(change.state, current):
                self.kick()  # sort it out from the newest state
                return None
            if change.state.counter <= current.counter:
                return None  # covered already
        self.state = change.state
        self.refreshes += 1
        self._fan_out(change)
        if self.on_change is not None:
            self.on_change(change)
        return change

    def offer(self, change: Change) -> bool:
        """A step another instance scanned (event loop only). Applied without a query
        when it starts at or before this hub's counter (a step that overlaps pokes a
        few streams twice, never one too few); otherwise — a gap, another epoch or
        horizon, no state yet — it only wakes a scan. True when applied or covered."""
        current = self.state
        before = change.before
        if (
            current is None
            or before is None
            or not _same_history(change.state, current)
            or not _same_history(before, current)
        ):
            self.kick()
            return False
        if change.state.counter <= current.counter:
            return True
        if before.counter > current.counter:
            self.kick()  # something between: scan it
            return False
        self.state = change.state
        self.applied += 1
        self._fan_out(change)
        return True

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
        """Each stream's verdict: the error that ends it, or its current scope. A fixed
        number of queries whatever the number of streams (see :func:`_principals`)."""
        ids = sorted({s.device_id for s in streams})
        verdicts: dict[Stream, ProtocolError | Principal] = {}
        with self.sessions() as session:
            rows: dict[str, tuple[Any, Any]] = {}
            for start in range(0, len(ids), _CHUNK):
                query = _CREDENTIALS.where(Device.id.in_(ids[start : start + _CHUNK]))
                for row in session.execute(query):
                    # check_token reads these attributes of the two rows, nothing else.
                    device = SimpleNamespace(
                        id=row[0], user_id=row[1], revoked_at=row[2], wipe=row[3],
                        token_generation=row[4],
                    )  # fmt: skip
                    user = SimpleNamespace(
                        id=row[1], active=row[5], token_generation=row[6], role=row[7],
                        team_id=row[8],
                    )  # fmt: skip
                    rows[str(row[0])] = (device, user)
            users = {user.id: user for _device, user in rows.values()}
            principals = _principals(session, users)
            now = self.clock()
            for stream in streams:
                found = rows.get(stream.device_id)
                try:
                    if found is None:
                        raise ProtocolError("unknown device", code=ErrorCode.UNAUTHORIZED)
                    device, user = found
                    check_token(stream.claims, user, device)
                    if stream.claims.expires_at <= now:
                        raise _expired(stream.claims)
                except ProtocolError as refused:
                    verdicts[stream] = refused
                    continue
                verdicts[stream] = principals[user.id]
            session.rollback()
        return verdicts

    def _generation(self) -> int:
        with self.engine.connect() as conn:
            return read_counter(conn, auth=True).auth_generation

    async def check_streams(self) -> int:
        """Close the streams whose credentials no longer hold; returns how many.

        One scalar read when nothing a token is checked against changed since the last
        check (the auth generation stands still): then only expiry is looked at, in
        memory. Otherwise every stream is checked against the rows (:meth:`_check`),
        the generation having been read *before* them."""
        streams = [s for s in self.streams if s.closed is None]
        if not streams:
            return 0
        generation = await self._db(self._generation)
        if generation == self.checked_generation:
            now = self.clock()
            expired = [s for s in streams if s.claims.expires_at <= now]
            for stream in expired:
                stream.close(_expired(stream.claims))
            return len(expired)
        verdicts = await self._db(self._check, streams)
        self.checked_generation = generation
        self.checks += 1
        closed = 0
        for stream, verdict in verdicts.items():
            if isinstance(verdict, ProtocolError):
                stream.close(verdict)
                closed += 1
            else:
                self.streams.rescope(stream, replace(verdict, device_id=stream.device_id))
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


def _expired(claims: AccessClaims) -> ProtocolError:
    return ProtocolError(
        "access token expired; use the refresh token",
        code=ErrorCode.TOKEN_EXPIRED,
        details={"expired_at": claims.expires_at},
    )


def _principals(session: Session, users: dict[str, Any]) -> dict[str, Principal]:
    """:func:`server.accounts.principal_for` of many users (``id``, ``role``,
    ``team_id``) in two queries: the teams the managers lead, then those teams'
    members. A manager leading several teams gets :func:`principal_for` itself (which
    of them it picks is its business)."""
    managers = sorted(uid for uid, u in users.items() if u.role == "manager")
    led: dict[str, list[str]] = {}
    for start in range(0, len(managers), _CHUNK):
        chunk = managers[start : start + _CHUNK]
        for manager_id, led_id in session.execute(
            select(Team.manager_id, Team.id).where(Team.manager_id.in_(chunk))
        ):
            led.setdefault(str(manager_id), []).append(str(led_id))
    team_of = {uid: (led[uid][0] if uid in led else users[uid].team_id) for uid in managers}
    teams = sorted({t for t in team_of.values() if t is not None})
    members: dict[str, set[str]] = {t: set() for t in teams}
    for start in range(0, len(teams), _CHUNK):
        chunk = teams[start : start + _CHUNK]
        for member_id, member_team in session.execute(
            select(User.id, User.team_id).where(User.team_id.in_(chunk))
        ):
            members[str(member_team)].add(str(member_id))
    out: dict[str, Principal] = {}
    for uid, u in users.items():
        if u.role != "manager":
            out[uid] = Principal(uid, u.role, u.team_id, frozenset(), None)
        elif len(led.get(uid, ())) > 1:
            out[uid] = principal_for(session, session.get_one(User, uid), None)
        else:
            team = team_of[uid]
            found = frozenset(members.get(team, ())) if team is not None else frozenset()
            out[uid] = Principal(uid, u.role, team, found, None)
    return out


def describe(hub: LiveHub) -> dict[str, Any]:
    """Numbers for health checks and tests."""
    return {
        "streams": len(hub.streams),
        "counter": hub.state.counter if hub.state else None,
        "refreshes": hub.refreshes,
        "applied": hub.applied,
    }
