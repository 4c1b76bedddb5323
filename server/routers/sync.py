"""``/v1/sync``: push, pull, info, schema.

The handlers negotiate the protocol, apply the server's limits and clock policy, and
hand the work to :mod:`server.repository`. Responses are written as bytes (the pull
page is assembled from stored JSON), so FastAPI does not re-validate them; the
``response_model`` still documents them in OpenAPI.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Response

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
    SyncInfo,
    SyncLimits,
    Timestamp,
    check_schema_name,
    check_schema_version,
    negotiate,
)
from sync_protocol.hlc import clamp, wall_clock_ms

from ..accounts import utcnow
from ..context import ServerContext
from ..deps import ContextDep, CurrentAuth, SessionDep
from ..errors import Forbidden
from ..openapi import error_responses
from ..repository import apply_push, mutation_digest, pull_page

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


@router.post("/pull", response_model=PullResponse, responses=error_responses(403, 409, 410, 426))
def pull(
    body: PullRequest, auth: CurrentAuth, context: ContextDep, session: SessionDep
) -> Response:
    """The next page of changes after ``checkpoint`` within the caller's scope."""
    if body.device_id != auth.device.id:
        raise Forbidden("device_id does not match the signed-in device")
    context.ops.activity.report(
        auth.device.id,
        now_ms=wall_clock_ms(),
        status=body.device_status,
        schema_version=body.schema_version,
    )
    protocol = _check_versions(context, body.protocol, body.schema_version, body.schema_name)
    seen = auth.device.last_seen
    now = utcnow()
    stale = seen is None or (seen.replace(tzinfo=now.tzinfo) + LAST_SEEN_RESOLUTION) < now
    page = pull_page(
        session.connection(),
        auth.principal,
        body.checkpoint,
        limit=min(body.limit, context.settings.max_pull_limit),
        server_hlc=context.clock.now(),
        protocol=protocol,
    )
    if stale:
        auth.device.last_seen = now
        session.commit()
    else:
        session.rollback()
    context.ops.activity.pull(auth.device.id, now_ms=wall_clock_ms(), checkpoint=page.checkpoint)
    context.ops.metrics.observe_pull(page.count)
    return Response(page.body, media_type="application/json")


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
