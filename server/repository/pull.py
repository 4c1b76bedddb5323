"""Serving a pull: the changes a user may see after a checkpoint, as ready JSON bytes.

Cost follows the number of changes, not the size of the data:

* every query is an index range scan — ``(owner_id, version)`` for each owner the user
  sees (one for a rep, one per team member for a manager) plus ``owner_id IS NULL`` for
  reference data, ``(version)`` for an admin, ``(user_id, version)`` for evictions,
  and the user's grants joined to their records (a ticket assigned to an agent of
  another team, :data:`server.scope.GRANTED_PULL`) — each bounded by ``limit + 1``,
  merged by version in Python (a version that comes twice is sent once); for a few
  changes (served on the event loop) all of them are parts of ONE ``UNION ALL``
  statement (one round trip, however many streams);
* a record's fields are stored as canonical JSON text and copied into the page as they
  are: the response body is assembled here, never re-encoded by pydantic.

The page stops at the committed counter ``H`` read first (``version <= H``); since
versions become visible in order (:mod:`.state`), a checkpoint never passes a change
that has yet to commit.

A checkpoint names its epoch (``v2:<epoch>:<version>``; the older ``v1:<version>`` is
epoch ``"0"``) and, once tombstones were ever purged, the purge horizon in force when it
was issued (``v2:<epoch>:<version>:<horizon>``). A checkpoint that cannot be served
exactly — another epoch (the database was restored), ahead of the counter (the counter
went back), or below the purge horizon *and issued before that horizon was reached*
(the device may hold a record whose delete was purged) — answers ``resync_required``
with ``details.reason``; it is never answered with a silent empty page. A checkpoint
issued after the last purge is good even below the horizon: the pages of a sync that
started after a purge never delivered a record whose tombstone is gone (without that,
every multi-page initial sync after a compaction would be sent back to the start).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import operator
import re
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, text

from sync_protocol import PROTOCOL_VERSION, ResyncRequired, ValidationFailed
from sync_protocol.errors import FieldError

from ..accounts import Principal
from ..scope import GRANTED_PULL, uses_grants, visible_owners
from .state import (
    INITIAL_EPOCH,
    SyncCounter,
    read_counter,
    read_counter_async,
    read_counter_dbapi,
)

CHECKPOINT_PREFIX = "v2:"
LEGACY_PREFIX = "v1:"
_CHECKPOINT = re.compile(r"^v2:([0-9a-z]{1,32}):(\d{1,18})(?::(\d{1,18}))?$|^v1:(\d{1,18})$")
_SAFE_ID = re.compile(r"^[A-Za-z0-9_\-.:]*$")

_COLUMNS = "version, collection, record_id, deleted, data"
_RANGE = "version > {since} AND version <= {high} ORDER BY version LIMIT {n}"
_BY_OWNER = f"SELECT {_COLUMNS} FROM records WHERE owner_id = {{owner}} AND {_RANGE}"
_REFERENCE = f"SELECT {_COLUMNS} FROM records WHERE owner_id IS NULL AND {_RANGE}"
_ALL = f"SELECT {_COLUMNS} FROM records WHERE {_RANGE}"
_EVICTIONS = (
    "SELECT version, collection, record_id, 2 AS deleted, NULL AS data FROM evictions "
    f"WHERE user_id = {{user}} AND {_RANGE}"
)
_COUNT_OWNER = text("SELECT count(*) FROM records WHERE owner_id = :owner AND version <= :high")
_COUNT_REFERENCE = text("SELECT count(*) FROM records WHERE owner_id IS NULL AND version <= :high")
_COUNT_ALL = text("SELECT count(*) FROM records WHERE version <= :high")
_COUNT_GRANTED = text(
    "SELECT count(*) FROM record_grants g JOIN records r ON r.collection = g.collection "
    "AND r.record_id = g.record_id WHERE g.user_id = :user AND r.version <= :high"
)
_NAMES = ("since", "high", "n", "owner", "user")


def _marks(params: dict[str, Any], paramstyle: str) -> dict[str, str]:
    names = {*_NAMES, *params}
    if paramstyle in ("named", "qmark"):
        return {k: f":{k}" for k in names}
    return {k: f"%({k})s" for k in names}


def _raw_query(conn: Connection, template: str, params: dict[str, Any]) -> list[Any]:
    """Run a page query on the DB-API cursor: plain tuples, no per-row result objects
    (the page is copied into the response as is, so nothing needs them). ``template``:
    with ``{name}`` placeholders, or already formatted (no braces left: unchanged)."""
    sql = template.format(**_marks(params, conn.dialect.paramstyle))
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql, params)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def format_checkpoint(version: int, epoch: str = INITIAL_EPOCH, horizon: int = 0) -> str:
    """``v1:<n>`` while the database was never restored nor purged (what installed
    devices hold), ``v2:<epoch>:<n>`` after a restore, ``v2:<epoch>:<n>:<horizon>`` once
    a purge raised the horizon."""
    if horizon:
        return f"{CHECKPOINT_PREFIX}{epoch}:{version}:{horizon}"
    if epoch == INITIAL_EPOCH:
        return f"{LEGACY_PREFIX}{version}"
    return f"{CHECKPOINT_PREFIX}{epoch}:{version}"


def checkpoint_horizon(checkpoint: str | None) -> int:
    """The purge horizon in force when ``checkpoint`` was issued (0: unknown or none)."""
    match = _CHECKPOINT.match(checkpoint or "")
    return int(match.group(3)) if match is not None and match.group(3) else 0


def parse_checkpoint(checkpoint: str | None) -> tuple[str, int] | None:
    """``(epoch, version)`` of a checkpoint, ``None`` for an initial sync."""
    if checkpoint is None:
        return None
    match = _CHECKPOINT.match(checkpoint)
    if match is None:
        raise ValidationFailed(
            "checkpoint is not one this server issued",
            errors=[FieldError(field="checkpoint", code="invalid", message="unknown checkpoint")],
        )
    if match.group(4) is not None:
        return INITIAL_EPOCH, int(match.group(4))
    return match.group(1), int(match.group(2))


def check_checkpoint(checkpoint: str | None, state: SyncCounter) -> int | None:
    """The version to pull after, or ``resync_required`` when the checkpoint cannot be
    served exactly (``details.reason``: ``epoch_changed``, ``checkpoint_ahead``,
    ``purged``)."""
    parsed = parse_checkpoint(checkpoint)
    if parsed is None:
        return None
    epoch, since = parsed
    details: dict[str, Any] = {"checkpoint": checkpoint}
    if epoch != state.epoch:
        raise ResyncRequired(
            "the server was restored from a backup since this device last synced; "
            "it must sync again from scratch (and push what it holds again)",
            details={**details, "reason": "epoch_changed"},
        )
    if since > state.counter:
        raise ResyncRequired(
            "this checkpoint is ahead of the server (it went back in time); "
            "the device must sync again from scratch",
            details={**details, "reason": "checkpoint_ahead", "counter": state.counter},
        )
    if since < state.purge_horizon and checkpoint_horizon(checkpoint) < state.purge_horizon:
        raise ResyncRequired(
            "this device has been offline longer than deleted records are kept; "
            "it must sync again from scratch",
            details={**details, "reason": "purged", "purge_horizon": state.purge_horizon},
        )
    return since


@dataclass(slots=True)
class PullPage:
    body: bytes
    count: int
    checkpoint: str
    has_more: bool
    remaining: int | None


def _owners(principal: Principal) -> list[str] | None:
    """Owners whose records the user sees; ``None`` means everyone (admin)."""
    return visible_owners(principal)


def _quote(value: str) -> str:
    if _SAFE_ID.match(value):
        return f'"{value}"'
    return json.dumps(value, ensure_ascii=False)


def _page_query(conn: Connection, principal: Principal, since: int, high: int, n: int) -> list[Any]:
    """Every stream of the user's scope after ``since`` — each owner's range, reference
    data, granted records, evictions; each an index range scan bounded by ``n`` — as
    plain tuples ordered by version, each version once (see :func:`_first_distinct`).

    The worker thread's path (initial syncs, devices far behind: large pages) reads each
    stream with its own statement: measured against the one-statement form of
    :func:`page_statement` (which the loop uses for a few changes, where the round trips
    dominate), large pages were ~10 % slower as one ``UNION ALL``."""
    params: dict[str, Any] = {"since": since, "high": high, "n": n}
    owners = _owners(principal)
    streams: list[list[Any]] = []
    if owners is None:
        streams.append(_raw_query(conn, _ALL, params))
    else:
        for owner in owners:
            streams.append(_raw_query(conn, _BY_OWNER, {**params, "owner": owner}))
        streams.append(_raw_query(conn, _REFERENCE, params))
    if uses_grants(principal):  # records granted to the user (a ticket's agent)
        streams.append(_raw_query(conn, GRANTED_PULL, {**params, "user": principal.user_id}))
    streams.append(_raw_query(conn, _EVICTIONS, {**params, "user": principal.user_id}))
    streams = [s for s in streams if s]
    if len(streams) == 1:
        return streams[0][:n]
    return _first_distinct(heapq.merge(*streams, key=_VERSION), n)


def page_statement(
    principal: Principal, since: int, high: int, n: int, paramstyle: str
) -> tuple[str, dict[str, Any]]:
    """The one statement of :func:`_page_query` and its parameters, for a DB-API cursor
    of ``paramstyle`` (the poll's loop connection runs it too: :class:`LoopReader`)."""
    params: dict[str, Any] = {"since": since, "high": high, "n": n, "user": principal.user_id}
    owners = _owners(principal)
    parts: list[str] = []
    if owners is None:
        parts.append(_ALL)
    else:
        for i, owner in enumerate(owners):
            params[f"owner{i}"] = owner
            parts.append(_BY_OWNER.replace("{owner}", f"{{owner{i}}}"))
        parts.append(_REFERENCE)
    if uses_grants(principal):  # records granted to the user (a ticket's agent)
        parts.append(GRANTED_PULL)
    # Each part keeps its own ORDER BY … LIMIT inside a derived table (SQLite and
    # PostgreSQL both take that form); a record's ``deleted`` becomes 0/1 to share the
    # evictions' integer column (2). The parts come back one after the other, each in
    # version order, and sorting their concatenation merges them (Timsort finds the runs).
    selects = [
        f"SELECT version, collection, record_id, CASE WHEN deleted THEN 1 ELSE 0 END, data "
        f"FROM ({part}) AS s{i}"
        for i, part in enumerate(parts)
    ]
    selects.append(f"SELECT * FROM ({_EVICTIONS}) AS e")
    return " UNION ALL ".join(selects).format(**_marks(params, paramstyle)), params


def merge_rows(rows: list[Any], n: int) -> list[Any]:
    """The rows of :func:`page_statement` merged by version, each version once, at most
    ``n``."""
    rows = sorted(rows, key=_VERSION)
    if len(set(map(_VERSION, rows))) == len(rows):  # the usual case: no version twice
        return rows[:n]
    return _first_distinct(rows, n)


_VERSION = operator.itemgetter(0)


def _first_distinct(rows: Iterable[Any], n: int) -> list[Any]:
    """The first ``n`` changes of the merged streams, each version once (a granted
    record the user also sees by owner comes in two streams). Safe to stop at ``n``:
    one stream alone holds up to ``n`` distinct versions, so a cut stream never leaves a
    gap below the page's last version."""
    out: list[Any] = []
    last = None
    for r in rows:
        if r[0] == last:
            continue
        last = r[0]
        out.append(r)
        if len(out) >= n:
            break
    return out


def _count(conn: Connection, principal: Principal, high: int) -> int:
    owners = _owners(principal)
    if owners is None:
        return int(conn.execute(_COUNT_ALL, {"high": high}).scalar_one())
    total = int(conn.execute(_COUNT_REFERENCE, {"high": high}).scalar_one())
    for owner in owners:
        total += int(conn.execute(_COUNT_OWNER, {"owner": owner, "high": high}).scalar_one())
    # granted records (an estimate: one also seen by owner counts twice)
    total += int(
        conn.execute(_COUNT_GRANTED, {"user": principal.user_id, "high": high}).scalar_one()
    )
    return total


def _change_json(rows: Iterator[Any]) -> Iterator[str]:
    # The hot loop of every pull: one f-string per row, the collection's quoted name
    # and the prefix of an upsert built once per collection, no call for a plain id.
    heads: dict[str, str] = {}
    safe = _SAFE_ID.match
    for version, collection, record_id, deleted, data in rows:
        head = heads.get(collection)
        if head is None:
            head = heads[collection] = f'{{"collection":{_quote(collection)},"record_id":'
        rid = f'"{record_id}"' if safe(record_id) else _quote(record_id)
        if not deleted:
            yield f'{head}{rid},"version":{version},"op":"upsert","fields":{data}}}'
        else:
            op = "evict" if deleted == 2 else "delete"
            yield f'{head}{rid},"version":{version},"op":"{op}"}}'


def pull_page(
    conn: Connection | None,
    principal: Principal,
    checkpoint: str | None,
    *,
    limit: int,
    server_hlc: str,
    protocol: int = PROTOCOL_VERSION,
    state: SyncCounter | None = None,
    rows: list[Any] | None = None,
) -> PullPage:
    """The next page of changes after ``checkpoint`` for ``principal``. ``state`` is the
    counter when the caller just read it (:func:`read_counter`); with nothing new after
    the checkpoint the page is answered from it alone, without another statement (and
    then ``conn`` may be ``None``). ``rows``: the page's rows as the caller already read
    them, after ``state`` (:func:`page_statement` for this checkpoint, ``state.counter``
    and ``limit + 1``, then :func:`merge_rows`) — then ``conn`` is not used either."""
    if state is None:
        assert conn is not None, "pull_page reads the counter on conn"
        state = read_counter(conn)
    since = check_checkpoint(checkpoint, state)
    start = since or 0
    high = state.counter
    if rows is None:
        rows = []
        if start < high:
            assert conn is not None, "pull_page has changes to read on conn"
            rows = _page_query(conn, principal, start, high, limit + 1)
    has_more = len(rows) > limit
    if has_more:
        rows = rows[:limit]
        next_version = int(rows[-1][0])
    else:
        next_version = max(high, start)
    remaining = None
    if since is None:
        remaining = 0
        if has_more:
            assert conn is not None
            remaining = max(0, _count(conn, principal, high) - len(rows))
    new_checkpoint = format_checkpoint(next_version, state.epoch, state.purge_horizon)
    head = f'{{"protocol":{protocol},"changes":['
    tail = (
        f'],"checkpoint":"{new_checkpoint}","has_more":{"true" if has_more else "false"},'
        f'"server_hlc":{json.dumps(server_hlc)},"remaining":'
        f"{'null' if remaining is None else remaining}}}"
    )
    body = head + ",".join(_change_json(iter(rows))) + tail
    return PullPage(body.encode("utf-8"), len(rows), new_checkpoint, has_more, remaining)


@dataclass(slots=True)
class Backlog:
    """What a device is missing behind the server (fleet health, ``fieldsync doctor``)."""

    #: Changes in the user's scope after the checkpoint (at most ``cap``).
    changes: int
    #: Last-change time (epoch ms) of the oldest of them; None when there are none.
    oldest_ms: int | None
    #: The checkpoint is from before the purge horizon (or not one this server issued):
    #: the device's next pull answers ``resync_required`` and it syncs from scratch.
    resync: bool
    capped: bool = False


_BACKLOG_OWNER = (
    "SELECT count(*), min(t) FROM (SELECT updated_at_ms AS t FROM records "
    "WHERE owner_id = {owner} AND version > {since} AND version <= {high} "
    "ORDER BY version LIMIT {n}) AS page"
)
_BACKLOG_REFERENCE = (
    "SELECT count(*), min(t) FROM (SELECT updated_at_ms AS t FROM records "
    "WHERE owner_id IS NULL AND version > {since} AND version <= {high} "
    "ORDER BY version LIMIT {n}) AS page"
)
_BACKLOG_ALL = (
    "SELECT count(*), min(t) FROM (SELECT updated_at_ms AS t FROM records "
    "WHERE version > {since} AND version <= {high} ORDER BY version LIMIT {n}) AS page"
)
_BACKLOG_GRANTED = (
    "SELECT count(*), min(t) FROM (SELECT r.updated_at_ms AS t FROM record_grants g "
    "JOIN records r ON r.collection = g.collection AND r.record_id = g.record_id "
    "WHERE g.user_id = {user} AND r.version > {since} AND r.version <= {high} "
    "ORDER BY r.version LIMIT {n}) AS page"
)
_BACKLOG_EVICTIONS = (
    "SELECT count(*), min(t) FROM (SELECT created_at_ms AS t FROM evictions "
    "WHERE user_id = {user} AND version > {since} AND version <= {high} "
    "ORDER BY version LIMIT {n}) AS page"
)


def backlog(
    conn: Connection, principal: Principal, checkpoint: str | None, *, cap: int = 100_000
) -> Backlog:
    """Count what a pull from ``checkpoint`` would deliver — the same scope and index
    range scans as :func:`pull_page`, each bounded by ``cap``."""
    state = read_counter(conn)
    try:
        since = check_checkpoint(checkpoint, state) or 0
    except (ValidationFailed, ResyncRequired):
        return Backlog(0, None, resync=True)
    resync = False
    params: dict[str, Any] = {"since": since, "high": state.counter, "n": cap}
    owners = _owners(principal)
    queries: list[tuple[str, dict[str, Any]]] = [
        (_BACKLOG_EVICTIONS, {**params, "user": principal.user_id})
    ]
    if owners is None:
        queries.append((_BACKLOG_ALL, params))
    else:
        queries.append((_BACKLOG_REFERENCE, params))
        queries.extend((_BACKLOG_OWNER, {**params, "owner": owner}) for owner in owners)
    if uses_grants(principal):
        queries.append((_BACKLOG_GRANTED, {**params, "user": principal.user_id}))
    total, oldest = 0, None
    for template, values in queries:
        [(count, first)] = _raw_query(conn, template, values)
        total += int(count)
        if first is not None:
            oldest = int(first) if oldest is None else min(oldest, int(first))
    return Backlog(min(total, cap), oldest, resync=resync, capped=total >= cap)


class LoopReader:
    """The event loop's own connection, for the poll's one statement.

    A poll with nothing new costs a single short read (the counter with the auth
    generation). Handing it to a worker thread costs more than the read itself on a busy
    machine, and SQLAlchemy's per-statement work costs as much again, so the pull route
    reads it on the loop, on this connection, never in a transaction (autocommit):

    * SQLite: a plain DB-API connection (a local file: microseconds, and a WAL reader
      never waits for a lock);
    * PostgreSQL: psycopg's *async* connection, so a slow or unreachable database never
      blocks the loop — the read is awaited, with a timeout.

    Any failure or timeout drops the connection and answers ``None``: the request then
    takes the ordinary path, which reports the error or succeeds on a pooled connection.
    """

    #: Seconds the loop waits for the PostgreSQL read (then: the ordinary path).
    TIMEOUT_S = 1.0

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        self._raw: Any = None  # SQLite: the pool's connection record (kept out of the pool)
        self._cursor: Any = None
        self._async: Any = None  # PostgreSQL: psycopg.AsyncConnection
        self._loop: asyncio.AbstractEventLoop | None = None
        #: A page is being read on this connection (:meth:`page_rows`).
        self.paging = False
        #: PostgreSQL: coroutines inside a statement on a connection (by ``id``), and
        #: connections dropped while some were (:meth:`aclose`): closed by the last one.
        self._users: dict[int, int] = {}
        self._retired: dict[int, Any] = {}

    @property
    def dbapi_connection(self) -> Any:
        """The driver's connection (tests trace its statements)."""
        if self._sqlite:
            return None if self._raw is None else self._raw.driver_connection
        return self._async

    async def read(self) -> SyncCounter | None:
        try:
            if self._sqlite:
                if self._cursor is None:
                    self._raw = self.engine.raw_connection()
                    self._raw.driver_connection.isolation_level = None  # never a BEGIN
                    self._cursor = self._raw.driver_connection.cursor()
                return read_counter_dbapi(self._cursor, "sqlite")
            async with asyncio.timeout(self.TIMEOUT_S):  # no extra task, unlike wait_for
                return await self._read_pg()
        except Exception:
            await self.aclose()
            return None

    async def page_rows(
        self, principal: Principal, since: int, high: int, n: int
    ) -> list[Any] | None:
        """:func:`_page_query` on this connection (after :meth:`read` gave ``high``), or
        ``None``: it failed (the connection is dropped), or another page is being read
        on it — one at a time, so a burst of pulls (a change many devices see) never
        queues the polls behind several page reads; serve the pull elsewhere."""
        if self.paging:
            return None
        self.paging = True
        try:
            if self._sqlite:
                if self._cursor is None:
                    return None
                sql, params = page_statement(principal, since, high, n, "named")
                self._cursor.execute(sql, params)
                return merge_rows(self._cursor.fetchall(), n)
            conn = self._async
            if conn is None:
                return None
            sql, params = page_statement(principal, since, high, n, "pyformat")
            async with (
                self._using(conn),
                asyncio.timeout(self.TIMEOUT_S),
                conn.cursor() as cursor,
            ):
                await cursor.execute(sql, params)
                return merge_rows(await cursor.fetchall(), n)
        except Exception:
            await self.aclose()
            return None
        finally:
            self.paging = False

    async def _read_pg(self) -> SyncCounter:
        import psycopg

        loop = asyncio.get_running_loop()
        if self._async is None or self._loop is not loop:
            await self.aclose()
            url = self.engine.url.set(drivername="postgresql")
            self._async = await psycopg.AsyncConnection.connect(
                url.render_as_string(hide_password=False), autocommit=True
            )
            self._loop = loop
        # A cursor per read: concurrent polls share the connection (psycopg serialises
        # them), never a cursor's result.
        conn = self._async
        async with self._using(conn), conn.cursor() as cursor:
            return await read_counter_async(cursor)

    @contextlib.asynccontextmanager
    async def _using(self, conn: Any) -> AsyncIterator[None]:
        key = id(conn)
        self._users[key] = self._users.get(key, 0) + 1
        try:
            yield
        finally:
            left = self._users[key] - 1
            if left:
                self._users[key] = left
            else:
                del self._users[key]
                retired = self._retired.pop(key, None)
                if retired is not None:
                    await _close(retired)

    async def aclose(self) -> None:
        """Drop the connections. A PostgreSQL connection other coroutines are still
        inside a statement on (a poll timed out while others share it) is closed by the
        last of them: psycopg's ``close()`` frees the driver's connection without its
        lock, under a statement another coroutine may be waiting on (suspected cause of
        server processes aborting — SIGABRT, a segfault in libpq — during the reconnect
        storm of bench/live_bench.py's 1,000 devices with instances restarted)."""
        raw, self._raw, self._cursor = self._raw, None, None
        if raw is not None:
            with contextlib.suppress(Exception):
                raw.invalidate()  # never back to the pool: its isolation level was changed
        conn, self._async, self._loop = self._async, None, None
        if conn is None:
            return
        if self._users.get(id(conn)):
            self._retired[id(conn)] = conn
        else:
            await _close(conn)


async def _close(conn: Any) -> None:
    with contextlib.suppress(Exception):
        await conn.close()
