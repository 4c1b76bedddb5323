"""``/v1/sync``: push, pull, info, schema.

The handlers negotiate the protocol, apply the server's limits and clock policy, and
hand the work to :mod:`server.repository`. Responses are written as bytes (the pull
page is assembled from stored JSON), so FastAPI does not re-validate them; the
``response_model`` still documents them in OpenAPI.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from pydantic import ValidationError
from sqlalchemy import Connection, update
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import State
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sync_protocol import (
    BatchTooLarge,
    ClockSkew,
    ErrorBody,
    ErrorCode,
    Mutation,
    ProtocolError,
    PullRequest,
    PullResponse,
    PushRequest,
    PushResponse,
    ResyncRequired,
    SyncInfo,
    SyncLimits,
    Timestamp,
    ValidationFailed,
    check_schema_name,
    check_schema_version,
    negotiate,
)
from sync_protocol.hlc import WALL_DIGITS, clamp, wall_clock_ms

from ..accounts import principal_for, utcnow
from ..auth import AccessClaims
from ..authcache import Verified
from ..context import ServerContext
from ..deps import (
    ContextDep,
    CurrentAuth,
    SessionDep,
    SignedClaims,
    check_token,
    get_auth,
    load_caller,
)
from ..errors import Forbidden
from ..gcpause import collector_paused
from ..middleware import GZIP, PARSED_JSON, accepted_encoding, checked_json, gzip_bytes
from ..models import Device
from ..openapi import error_responses
from ..repository import SyncCounter, apply_push, mutation_digest, pull_page
from ..repository.pull import LoopReader, check_checkpoint
from ..repository.state import read_counter_dbapi

router = APIRouter(prefix="/v1/sync", tags=["sync"])

#: A device's ``last_seen`` is refreshed by pulls at most this often (a write per poll
#: would contend with pushes for no benefit).
LAST_SEEN_RESOLUTION = timedelta(seconds=60)


def _check_versions(
    context: ServerContext, protocol: int, schema_version: int, schema_name: str | None = None
) -> int:
    version = negotiate(protocol)
    check_schema_name(schema_name, served=context.schema.name)
    check_schema_version(
        schema_version,
        current=context.schema.version,
        minimum=context.schema.min_client_version,
    )
    return version


def _settle_clocks(
    context: ServerContext, mutations: list[Mutation]
) -> tuple[list[Mutation], list[ErrorBody]]:
    """Apply the drift policy to every mutation's HLC; merge them into the server clock."""
    settings = context.settings
    now = wall_clock_ms()
    limit = now + settings.max_drift_ms
    settled: list[Mutation] = []
    worst = 0
    # A validated ``hlc`` matches HLC_PATTERN: in ASCII, its first 15 characters are the
    # zero-padded wall time, so comparing them as text with the padded limit is
    # comparing the numbers (no Timestamp per mutation; ~1.4 → ~0.2 ms per 1,000).
    # Anything else (a limit past 15 digits, non-ASCII digits) is parsed as before.
    limit_text = f"{limit:0{WALL_DIGITS}d}" if 0 <= limit < 10**WALL_DIGITS else ""
    for m in mutations:
        hlc = m.hlc
        if limit_text and hlc.isascii() and hlc[:WALL_DIGITS] <= limit_text:
            settled.append(m)
            continue
        ts = Timestamp.parse(hlc)
        if ts.wall_ms > limit:
            worst = max(worst, ts.wall_ms - now)
            if settings.clock_policy == "clamp":
                ts = clamp(ts, server_now_ms=now, max_drift_ms=settings.max_drift_ms)
                m = m.model_copy(update={"hlc": ts.encode()})
        settled.append(m)
    details: dict[str, Any] = {
        "drift_ms": worst,
        "server_time_ms": now,
        "max_drift_ms": settings.max_drift_ms,
    }
    if worst and settings.clock_policy == "refuse":
        raise ClockSkew(
            f"device clock is {worst // 1000} s ahead of the server; fix the device's time",
            details=details,
        )
    warnings = []
    if worst:
        warnings.append(
            ErrorBody(
                code=ErrorCode.CLOCK_SKEW,
                message=f"device clock is {worst // 1000} s ahead of the server; "
                "its timestamps were pulled back",
                details=details,
            )
        )
    if settled:
        context.clock.receive(max(m.hlc for m in settled))
    return settled, warnings


class _PushRoute(APIRoute):
    """The push's route: its JSON body is the document the body middleware already
    parsed and checked (``scope[PARSED_JSON]``), not parsed again — a 1,000-mutation
    push is ~650 kB of JSON — and a push whose body validates is served in **one** hop
    to a worker thread (session, caller, push) instead of FastAPI's four (the session
    dependency's entry and exit, the caller's check, the endpoint): each hop is a
    thread hand-over and a wake-up on the path of every batch.

    What it answers is FastAPI's: the body is validated by the route's own body field
    first (as FastAPI would, with nothing observable done before), and only a body
    that validates, of a type FastAPI reads as JSON, takes the short way — where the
    caller is checked (:func:`~server.deps.get_auth`, the same errors in the same order:
    FastAPI checks the caller before it reports a bad body) and :func:`push` runs, as
    the endpoint would. Anything else — no parsed document, another content type, a
    body that does not validate — goes to FastAPI's handler unchanged."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        body_field = self.body_field
        assert body_field is not None

        async def route(request: Request) -> Response:
            document = request.scope.get(PARSED_JSON, _UNPARSED)
            if document is _UNPARSED:
                return await handler(request)
            request._json = document  # what Starlette's Request.json() caches
            body = _valid_body(request, body_field, document)
            if body is None:
                return await handler(request)
            context: ServerContext = request.app.state.fieldsync
            return await run_in_threadpool(_push_one_hop, request, context, body)

        return route


_UNPARSED: Any = object()


def _valid_body(request: Request, body_field: Any, document: Any) -> PushRequest | None:
    """The push body as FastAPI's validation of ``document`` gives it, when FastAPI
    reads this request's body as that JSON document (``Content-Type:
    application/json``, any parameters) and it validates; else ``None``."""
    content_type = request.headers.get("content-type")
    if content_type is None or content_type.split(";", 1)[0].strip().lower() != JSON:
        return None
    body, errors = body_field.validate(document, loc=("body",))
    return body if not errors and isinstance(body, PushRequest) else None


def _push_one_hop(request: Request, context: ServerContext, body: PushRequest) -> Response:
    """What FastAPI's dependencies and endpoint do for a valid push, in one thread:
    the session (``get_session``), the caller (``get_auth``), then :func:`push`."""
    with context.sessions() as session:
        auth = get_auth(request, context, session)
        return push(body, auth, context, session)


def push(
    body: PushRequest, auth: CurrentAuth, context: ContextDep, session: SessionDep
) -> Response:
    """Apply a batch of mutations, each atomically, each with its own result."""
    with collector_paused():  # a push's ~100,000 live objects: no GC walks meanwhile
        return _push(body, auth, context, session)


def _push(
    body: PushRequest, auth: CurrentAuth, context: ContextDep, session: SessionDep
) -> Response:
    if body.device_id != auth.device.id:
        raise Forbidden("device_id does not match the signed-in device")
    # Kept even if this push fails (fleet health: what the device said when refused).
    context.ops.activity.report(
        auth.device.id,
        now_ms=wall_clock_ms(),
        status=body.device_status,
        pending_total=body.pending_total,
        schema_version=body.schema_version,
    )
    protocol = _check_versions(context, body.protocol, body.schema_version, body.schema_name)
    if len(body.mutations) > context.settings.max_batch:
        raise BatchTooLarge(
            f"at most {context.settings.max_batch} mutations per push",
            details={"max_batch": context.settings.max_batch, "got": len(body.mutations)},
        )
    # Idempotency compares what the device sent, before any clock is clamped: an
    # honest retry of a clamped mutation is still a duplicate.
    digests = [mutation_digest(m) for m in body.mutations]
    try:
        mutations, warnings = _settle_clocks(context, body.mutations)
    except ClockSkew as refused:
        context.ops.activity.clock_ahead(
            auth.device.id, now_ms=wall_clock_ms(), drift_ms=int(refused.details["drift_ms"])
        )
        raise
    with context.ops.foreground.running():  # background indexing gives way meanwhile
        outcome = apply_push(
            session.connection(),
            auth.principal,
            context.schema,
            mutations,
            now_ms=wall_clock_ms(),
            server_hlc=context.clock.now,
            before_commit=context.hooks.before_push_commit,
            digests=digests,
            rules=context.rules,
        )
        auth.device.last_seen = utcnow()
        auth.device.protocol = protocol
        session.commit()
    context.ops.activity.push(
        auth.device.id,
        now_ms=wall_clock_ms(),
        status=body.device_status,
        pending_total=body.pending_total,
        answered=len(outcome.results),
        rejected=outcome.rejected,
        clock_ahead_ms=int(warnings[0].details["drift_ms"]) if warnings else None,
    )
    context.ops.metrics.observe_push(mutations, outcome.results)
    response = PushResponse(
        protocol=protocol,
        results=outcome.results,
        server_hlc=context.clock.now(),
        warnings=warnings,
    )
    return Response(response.model_dump_json(), media_type="application/json")


router.add_api_route(
    "/push",
    push,
    methods=["POST"],
    response_model=PushResponse,
    responses=error_responses(403, 409, 413, 426),
    route_class_override=_PushRoute,
)


@router.post(
    "/pull",
    response_model=PullResponse,
    responses=error_responses(403, 409, 410, 426),
)
async def pull(request: Request, body: PullRequest, claims: SignedClaims) -> Response:
    """The next page of changes after ``checkpoint`` within the caller's scope."""
    # A poll with nothing new is answered on the event loop: one statement (counter +
    # auth generation) on the loop's own connection and a cached token check — usually
    # before it gets here, by :class:`FastPoll`. Anything else takes one hop to a worker
    # thread for the whole request (rows, page, gzip). Either way the token's signature
    # and expiry are checked first.
    context: ServerContext = request.app.state.fieldsync
    accept = request.headers.get("accept-encoding")
    if STATE_KEY in request.scope:  # FastPoll read it and found something to serve
        state = request.scope[STATE_KEY]
    else:
        state = await _loop_state(context, body)
    if state is not None:
        caller = _nothing_new(context, claims, body, state)
        if caller is not None:
            return _answer(context, request.state, claims, body, accept, None, state, caller)
    return await run_in_threadpool(_serve_pull, context, request, claims, body, accept, state)


#: Scope key: the counter :class:`FastPoll` read on the loop for a pull it left to the
#: route (``None``: the read failed) — not read a second time.
STATE_KEY = "fieldsync.pull_state"


async def _loop_state(context: ServerContext, body: PullRequest) -> SyncCounter | None:
    """The counter with the auth generation, read on the event loop's own connection for
    a pull after a checkpoint (``None``: an initial sync, or the read failed)."""
    if body.checkpoint is None:
        return None
    reader = context.loop_reader
    if reader is None:
        reader = context.loop_reader = LoopReader(context.engine)
    return await reader.read()


def _nothing_new(
    context: ServerContext, claims: AccessClaims, body: PullRequest, state: SyncCounter
) -> Verified | None:
    """The verified caller when this pull is a poll with nothing new after ``state`` for
    a caller verified under ``state``'s auth generation (answer it from ``state`` alone),
    or ``None`` (serve it in a worker thread)."""
    servable = _on_loop(context, claims, body, state)
    if servable is None or servable[1] != state.counter:
        return None
    return servable[0]


def _on_loop(
    context: ServerContext, claims: AccessClaims, body: PullRequest, state: SyncCounter
) -> tuple[Verified, int] | None:
    """``(caller, since)`` when this pull after a checkpoint may be served on the event
    loop: the caller verified under ``state``'s auth generation (and epoch), its
    ``last_seen`` fresh (no write due), the checkpoint one ``state`` serves exactly.
    ``None``: the full path decides (and answers any error)."""
    caller = context.auth_cache.get(claims, epoch=state.epoch, generation=state.auth_generation)
    if caller is None or _stale(caller.last_seen, utcnow()):
        return None
    try:
        since = check_checkpoint(body.checkpoint, state)
    except (ValidationFailed, ResyncRequired):
        return None  # answered (with the error) by the full path
    if since is None:
        return None
    return caller, since


def _serve_pull(
    context: ServerContext,
    request: Request,
    claims: AccessClaims,
    body: PullRequest,
    accept_encoding: str | None,
    state: SyncCounter | None,
) -> Response:
    """The full path, in a worker thread. ``state``: the counter as read on the loop
    (before anything here is read, so it may serve as this pull's counter: every version
    up to it had committed when it was read), or ``None`` (read it here first)."""
    with context.engine.connect() as conn:
        # Autocommit: every statement reads what is committed, no BEGIN/ROLLBACK round
        # trips. The counter is read before any row (pull.py), the auth generation before
        # the caller's rows (authcache.py).
        if conn.dialect.name != "sqlite":  # pysqlite never BEGINs before a SELECT anyway
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        if state is None:
            cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            try:  # the counter's one statement without SQLAlchemy's per-statement work
                state = read_counter_dbapi(cursor, conn.dialect.name)
            finally:
                cursor.close()
        caller = context.auth_cache.get(claims, epoch=state.epoch, generation=state.auth_generation)
        if caller is None:
            caller = _verify_caller(conn, request, claims, state)
            context.auth_cache.put(claims, caller)
        return _answer(context, request.state, claims, body, accept_encoding, conn, state, caller)


def _stale(seen: datetime | None, now: datetime) -> bool:
    return seen is None or (seen.replace(tzinfo=now.tzinfo) + LAST_SEEN_RESOLUTION) < now


def _answer(
    context: ServerContext,
    request_state: State,
    claims: AccessClaims,
    body: PullRequest,
    accept_encoding: str | None,
    conn: Connection | None,
    state: SyncCounter,
    caller: Verified,
) -> Response:
    """The page for a verified caller, from the counter ``state`` just read."""
    content, headers = _page(
        context, request_state, claims, body, accept_encoding, conn, state, caller
    )
    return Response(content, media_type=JSON, headers=headers)


def _page(
    context: ServerContext,
    request_state: State,
    claims: AccessClaims,
    body: PullRequest,
    accept_encoding: str | None,
    conn: Connection | None,
    state: SyncCounter,
    caller: Verified,
    rows: list[Any] | None = None,
) -> tuple[bytes, dict[str, str]]:
    """:func:`_answer`'s body and extra headers (:class:`FastPoll` sends them itself;
    ``rows``: the page's rows as it read them on the loop)."""
    request_state.device_id = claims.device_id  # errors from here on are the device's
    if body.device_id != claims.device_id:
        raise Forbidden("device_id does not match the signed-in device")
    context.ops.activity.report(
        claims.device_id,
        now_ms=wall_clock_ms(),
        status=body.device_status,
        schema_version=body.schema_version,
    )
    protocol = _check_versions(context, body.protocol, body.schema_version, body.schema_name)
    page = pull_page(
        conn,
        caller.principal,
        body.checkpoint,
        limit=min(body.limit, context.settings.max_pull_limit),
        server_hlc=context.clock.now(),
        protocol=protocol,
        state=state,
        rows=rows,
    )
    now = utcnow()
    if _stale(caller.last_seen, now):
        _touch(context, claims.device_id, now)
        caller.last_seen = now
    context.ops.activity.pull(claims.device_id, now_ms=wall_clock_ms(), checkpoint=page.checkpoint)
    context.ops.metrics.observe_pull(page.count)
    content, headers = page.body, {}
    if (
        len(content) >= context.settings.gzip_min_bytes
        and accepted_encoding(accept_encoding) == GZIP
    ):
        # Compressed here (in the worker thread for a large page), not by the middleware.
        content = gzip_bytes(content, context.settings.gzip_level)
        headers = {"Content-Encoding": GZIP, "Vary": "Accept-Encoding"}
    return content, headers


def _verify_caller(
    conn: Connection, request: Request, claims: AccessClaims, state: SyncCounter
) -> Verified:
    """Read the caller's rows and hold the token against them (after ``state`` was read:
    the entry is vouched for by the auth generation read before the rows)."""
    with Session(bind=conn) as session:
        user, device = load_caller(session, claims)
        request.state.device_id = device.id  # errors from here on are the device's
        check_token(claims, user, device)
        principal = principal_for(session, user, device.id)
        return Verified(principal, state.epoch, state.auth_generation, device.last_seen)


def _touch(context: ServerContext, device_id: str, now: datetime) -> None:
    """Refresh the device's ``last_seen`` (at most every ``LAST_SEEN_RESOLUTION``)."""
    with context.sessions() as session:
        session.execute(update(Device).where(Device.id == device_id).values(last_seen=now))
        session.commit()


# ---- the poll's fast path ----------------------------------------------------------------

PULL_PATH = "/v1/sync/pull"
JSON = "application/json"
#: A poll's body is ~150 bytes; a larger one is left to the ordinary path unread.
MAX_POLL_BODY = 4096
#: A pull whose checkpoint is at most this many versions behind the counter is served on
#: the loop (its page holds at most that many changes: ~0.5 ms of page building per
#: 250 changes); further behind, in a worker thread.
LOOP_PAGE_VERSIONS = 500
_JSON_TYPES = (b"application/json", b"application/json; charset=utf-8")


class FastPoll:
    """ASGI middleware: answers a poll — nothing new, or a few changes — without FastAPI's
    machinery or a worker thread.

    Mounted inside :class:`~server.observability.middleware.ObservabilityMiddleware`
    (request id, latency histogram, access line and the restore gate still cover it) and
    outside the body and compression middleware and the routes. For ``POST
    /v1/sync/pull`` with a plain JSON body of at most :data:`MAX_POLL_BODY` bytes it
    does what the route would do on its inline path and nothing less:

    * the body passes the same wire-safety checks
      (:func:`~server.middleware.checked_json`) and the same :class:`PullRequest`
      validation; the bearer token the same signature and expiry check;
    * ``device_id``, protocol and schema are checked as :func:`_page` checks them;
    * :func:`_on_loop` decides: one statement (counter + auth generation) on the
      loop's connection, the cached token check valid only under the auth generation
      just read (revocation by anyone acts on the next poll), the checkpoint argument
      of :func:`~server.repository.pull.check_checkpoint`, no ``last_seen`` write due;
    * with changes after the checkpoint — at most :data:`LOOP_PAGE_VERSIONS` versions
      behind — the page's one statement runs on the same connection after the counter
      (a later snapshot: every version up to the counter is visible to it);
    * the answer is :func:`_page`'s — activity, metrics, ``last_seen``, gzip — sent with
      the headers the route's ``Response`` would carry, and the matched route recorded
      in the scope for the metrics and the access line.

    Anything else — another path, a gzip or oversized body, a missing or bad token, a
    body or checkpoint the route would refuse, an initial sync or a checkpoint far
    behind, an uncached caller, any error before the answer — is handed to the ordinary stack with the body
    replayed as it was received, which answers it (errors included) exactly as before.
    Nothing observable happens on this path before it has decided to answer.
    """

    def __init__(self, app: ASGIApp, *, context: ServerContext) -> None:
        self.app = app
        self.context = context
        #: The route FastAPI would have matched (its template labels the metrics and the
        #: access line; ``_note_error`` names it).
        self._route = next(r for r in router.routes if getattr(r, "path", None) == PULL_PATH)
        #: Polls answered here (tests and diagnostics).
        self.answered = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PULL_PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        token = accept = None
        plain = True
        for name, value in scope["headers"]:
            if name == b"authorization":
                token = value
            elif name == b"accept-encoding":
                accept = value
            elif name == b"content-type":
                plain = plain and value.lower() in _JSON_TYPES
            elif name in (b"content-encoding", b"transfer-encoding"):
                plain = plain and value.strip().lower() == b"identity"
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > MAX_POLL_BODY or not message.get("more_body", False):
                break
        answer = None
        limit = min(MAX_POLL_BODY, self.context.settings.max_body_bytes)
        if plain and token is not None and size <= limit and len(messages) == 1:
            try:
                answer = await self._answer(scope, token, accept, messages[0].get("body", b""))
            except Exception:  # the ordinary path answers it (and reports the error)
                answer = None
        if answer is None:
            await self.app(scope, _replay(messages, receive), send)
            return
        content, extra = answer
        headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()]
        headers += [
            (b"content-length", str(len(content)).encode()),
            (b"content-type", JSON.encode()),
        ]
        self.answered += 1
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    async def _answer(
        self, scope: Scope, authorization: bytes, accept: bytes | None, raw: bytes
    ) -> tuple[bytes, dict[str, str]] | None:
        scheme, _, token = authorization.decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not raw.startswith(b"{"):
            return None
        document, problems = checked_json(raw)
        if problems or not isinstance(document, dict):
            return None
        context = self.context
        try:
            body = PullRequest.model_validate(document)
            claims = context.signer.verify(token.strip())
            if body.device_id != claims.device_id:
                return None
            _check_versions(context, body.protocol, body.schema_version, body.schema_name)
        except (ProtocolError, ValidationError):
            return None
        state = await _loop_state(context, body)
        scope[STATE_KEY] = state  # not read again by the route
        servable = None if state is None else _on_loop(context, claims, body, state)
        if state is None or servable is None:
            return None
        caller, since = servable
        rows = None
        if since < state.counter:
            # A few changes: read them here too, after the counter (a later statement,
            # so a later snapshot: every version up to it is visible), rather than hop to
            # a worker thread and a pooled connection. Many: the worker thread reads
            # and builds the page off the loop.
            if state.counter - since > LOOP_PAGE_VERSIONS:
                return None
            reader = context.loop_reader
            assert reader is not None  # _loop_state made it
            limit = min(body.limit, context.settings.max_pull_limit)
            rows = await reader.page_rows(caller.principal, since, state.counter, limit + 1)
            if rows is None:
                return None
        request_state = State(scope.setdefault("state", {}))
        accept_encoding = None if accept is None else accept.decode("latin-1")
        page = _page(
            context, request_state, claims, body, accept_encoding, None, state, caller, rows
        )
        scope["route"] = self._route
        return page


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """``receive`` with ``messages`` (already taken from it) given back first."""
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed


@router.get("/info", response_model=SyncInfo)
def info(context: ContextDep) -> SyncInfo:
    """Protocol versions, schema version and limits (no sign-in needed)."""
    from sync_protocol.versions import MAX_PROTOCOL_VERSION, MIN_PROTOCOL_VERSION

    s = context.settings
    return SyncInfo(
        protocol={"min": MIN_PROTOCOL_VERSION, "max": MAX_PROTOCOL_VERSION},
        schema_version=context.schema.version,
        min_schema_version=context.schema.min_client_version,
        limits=SyncLimits(
            max_batch=s.max_batch,
            max_pull_limit=s.max_pull_limit,
            max_drift_ms=s.max_drift_ms,
            tombstone_retention_days=s.tombstone_retention_days,
            max_body_bytes=s.max_body_bytes,
            offline_lease_days=s.offline_lease_days,
        ),
        server_time_ms=wall_clock_ms(),
    )


@router.get("/schema")
def schema(context: ContextDep) -> dict[str, Any]:
    """The entity schemas the server validates against."""
    return context.schema.describe()
