"""``/v1/sync``: push, pull, info, schema.

The handlers negotiate the protocol, apply the server's limits and clock policy, and
hand the work to :mod:`server.repository`. Responses are written as bytes (the pull
page is assembled from stored JSON), so FastAPI does not re-validate them; the
``response_model`` still documents them in OpenAPI.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy import Connection, update
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from sync_protocol import (
    BatchTooLarge,
    ClockSkew,
    ErrorBody,
    ErrorCode,
    Mutation,
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
from sync_protocol.hlc import clamp, wall_clock_ms

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
    load_caller,
)
from ..errors import Forbidden
from ..middleware import GZIP, accepted_encoding, gzip_bytes
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
    for m in mutations:
        ts = Timestamp.parse(m.hlc)
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


@router.post("/push", response_model=PushResponse, responses=error_responses(403, 409, 413, 426))
def push(
    body: PushRequest, auth: CurrentAuth, context: ContextDep, session: SessionDep
) -> Response:
    """Apply a batch of mutations, each atomically, each with its own result."""
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


@router.post(
    "/pull",
    response_model=PullResponse,
    responses=error_responses(403, 409, 410, 426),
)
async def pull(request: Request, body: PullRequest, claims: SignedClaims) -> Response:
    """The next page of changes after ``checkpoint`` within the caller's scope."""
    # A poll with nothing new is answered right here on the event loop: one statement
    # (counter + auth generation) on the loop's own connection and a cached token check.
    # Anything else takes one hop to a worker thread for the whole request (rows, page,
    # gzip). Either way the token's signature and expiry are checked first.
    context: ServerContext = request.app.state.fieldsync
    accept = request.headers.get("accept-encoding")
    answer = await _poll_inline(context, request, claims, body, accept)
    if answer is not None:
        return answer
    return await run_in_threadpool(_serve_pull, context, request, claims, body, accept)


async def _poll_inline(
    context: ServerContext,
    request: Request,
    claims: AccessClaims,
    body: PullRequest,
    accept_encoding: str | None,
) -> Response | None:
    """The answer to a poll with nothing new for a caller verified under the current auth
    generation, or ``None`` (serve it in a worker thread)."""
    if body.checkpoint is None:
        return None
    reader = context.loop_reader
    if reader is None:
        reader = context.loop_reader = LoopReader(context.engine)
    state = await reader.read()
    if state is None:
        return None
    caller = context.auth_cache.get(claims, epoch=state.epoch, generation=state.auth_generation)
    if caller is None or _stale(caller.last_seen, utcnow()):
        return None
    try:
        since = check_checkpoint(body.checkpoint, state)
    except (ValidationFailed, ResyncRequired):
        return None  # answered (with the error) by the full path
    if since != state.counter:
        return None
    # Nothing new: pull_page answers from ``state`` alone and runs no statement.
    return _answer(context, request, claims, body, accept_encoding, None, state, caller)


def _serve_pull(
    context: ServerContext,
    request: Request,
    claims: AccessClaims,
    body: PullRequest,
    accept_encoding: str | None,
) -> Response:
    with context.engine.connect() as conn:
        # Autocommit: every statement reads what is committed, no BEGIN/ROLLBACK round
        # trips. The counter is read before any row (pull.py), the auth generation before
        # the caller's rows (authcache.py).
        if conn.dialect.name != "sqlite":  # pysqlite never BEGINs before a SELECT anyway
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:  # the counter's one statement without SQLAlchemy's per-statement work
            state = read_counter_dbapi(cursor, conn.dialect.name)
        finally:
            cursor.close()
        caller = context.auth_cache.get(claims, epoch=state.epoch, generation=state.auth_generation)
        if caller is None:
            caller = _verify_caller(conn, request, claims, state)
            context.auth_cache.put(claims, caller)
        return _answer(context, request, claims, body, accept_encoding, conn, state, caller)


def _stale(seen: datetime | None, now: datetime) -> bool:
    return seen is None or (seen.replace(tzinfo=now.tzinfo) + LAST_SEEN_RESOLUTION) < now


def _answer(
    context: ServerContext,
    request: Request,
    claims: AccessClaims,
    body: PullRequest,
    accept_encoding: str | None,
    conn: Connection | None,
    state: SyncCounter,
    caller: Verified,
) -> Response:
    """The page for a verified caller, from the counter ``state`` just read."""
    request.state.device_id = claims.device_id  # errors from here on are the device's
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
    return Response(content, media_type="application/json", headers=headers)


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
