"""``GET /v1/sync/events``: a Server-Sent Events stream per signed-in device.

The stream never carries records. It says *that* the device's scope has changes up to
a checkpoint; the device then pulls as usual (docs/protocol.md, "Live pokes")::

    retry: 3000

    event: ready
    data: {"checkpoint": "v1:812", "heartbeat_s": 15.0}

    event: changes
    id: v1:815
    data: {"checkpoint": "v1:815"}

    event: heartbeat
    data: {"server_time_ms": 1796356800000}

    event: error
    data: {"error": {"code": "device_revoked", "message": "…", "details": {"wipe": false}}}

Pokes are coalesced: a stream that is not ready to take one keeps only the newest.
Signing in is checked like any request (:func:`server.deps.get_auth`); the database
connection is returned before streaming starts, so an idle stream holds none.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from sync_protocol import ErrorResponse, ProtocolError
from sync_protocol.hlc import wall_clock_ms

from ..auth import AccessClaims
from ..context import ServerContext
from ..deps import AuthContext, ContextDep, _bearer, get_auth
from ..openapi import BEARER
from .hub import LiveHub, Stream, wait_event

router = APIRouter(prefix="/v1/sync", tags=["sync"])

#: How long (ms) a disconnected EventSource waits before reconnecting.
RETRY_MS = 3000

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in (
        (401, "missing, invalid or expired access token; signed out"),
        (403, "device revoked (`device_revoked`, details.wipe)"),
        (503, "this instance holds as many streams as it may (`service_unavailable`)"),
    )
}


def hub_of(request: Request) -> LiveHub:
    hub: LiveHub = request.app.state.fieldsync_live
    return hub


def _event(name: str, data: dict[str, Any], event_id: str | None = None) -> str:
    head = f"event: {name}\n" + (f"id: {event_id}\n" if event_id else "")
    return head + "data: " + json.dumps(data, separators=(",", ":")) + "\n\n"


def _authenticate(request: Request, context: ServerContext) -> tuple[AccessClaims, AuthContext]:
    claims = context.signer.verify(_bearer(request))
    with context.sessions() as session:
        auth = get_auth(request, context, session)
        session.rollback()
    return claims, auth


async def _events(
    stream: Stream, hub: LiveHub, first: str, heartbeat_s: float
) -> AsyncIterator[str]:
    try:
        stream.announced = first
        yield f"retry: {RETRY_MS}\n\n" + _event(
            "ready", {"checkpoint": first, "heartbeat_s": heartbeat_s}
        )
        while True:
            if not await wait_event(stream.wake, heartbeat_s):
                yield _event("heartbeat", {"server_time_ms": wall_clock_ms()})
                continue
            stream.wake.clear()
            if stream.closed is not None:
                body = stream.closed.to_body().model_dump(mode="json")
                yield _event("error", {"error": body})
                return
            checkpoint = stream.checkpoint
            if checkpoint is not None and checkpoint != stream.announced:
                stream.announced = checkpoint
                yield _event("changes", {"checkpoint": checkpoint}, checkpoint)
    finally:
        hub.discard(stream)


@router.get(
    "/events",
    dependencies=[Depends(BEARER)],  # documents the bearer scheme (server.openapi)
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **_ERRORS},
)
async def events(request: Request, context: ContextDep) -> StreamingResponse:
    """Live pokes for this device: `ready`, then `changes` whenever its scope changed
    (pull then), `heartbeat` when idle, `error` before the server ends the stream
    (revoked, signed out, token expired: the same codes a request would get)."""
    hub = hub_of(request)
    claims, auth = await asyncio.to_thread(_authenticate, request, context)
    stream = hub.open(claims, auth.principal)
    try:
        first = await hub.current_checkpoint()
    except BaseException:
        hub.discard(stream)
        raise
    heartbeat_s = context.settings.live_heartbeat_s
    return StreamingResponse(
        _events(stream, hub, first, heartbeat_s),
        media_type="text/event-stream",
        headers={
            "Cache-Control": "no-cache, no-store",
            # nginx: pass each event on at once instead of buffering the response.
            "X-Accel-Buffering": "no",
        },
    )


__all__ = ["ProtocolError", "router"]
