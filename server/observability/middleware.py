"""Per request: a request id, the latency histogram, and one structured access line.

Pure ASGI (no per-request task or body buffering), outermost of the app's middleware so
its time includes gzip. The request id comes from a well-formed ``X-Request-ID`` header
(a proxy's) or is made here; it is answered in ``X-Request-ID`` and set in
:data:`~server.observability.logs.request_id_var` for every log line of the request.

The access line names the route *template* (``/v1/manager/records/{collection}/{record_id}``),
never the query string or a body: searches and writes carry customers' data.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .logs import request_id_var
from .metrics import Metrics

access_log = logging.getLogger("fieldsync.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")


class ObservabilityMiddleware:
    def __init__(
        self, app: ASGIApp, *, metrics: Metrics, access_log: bool, paused: Any = None
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.log_requests = access_log
        #: Anything with ``.active``: true while a restore runs (answer 503 meanwhile).
        self.paused = paused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        token = request_id_var.set(request_id)
        scope.setdefault("state", {})
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            if self.paused is not None and self.paused.active and scope["path"] != "/healthz":
                await _unavailable(send_with_id)
            else:
                await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = _route(scope)
            self.metrics.observe_request(route or "<unmatched>", scope["method"], status, seconds)
            if self.log_requests:
                _log(scope, route, status, seconds)
            request_id_var.reset(token)


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = str(value.decode("latin-1"))
            if _REQUEST_ID.match(text):
                return text
            break
    return uuid.uuid4().hex[:16]


def _route(scope: Scope) -> str | None:
    """The matched route's template. The body middleware hands the match back from the
    scope copy it routed (server/middleware.py); top-level routes are found again here."""
    route = scope.get("route")
    if route is None:
        app: Any = scope.get("app")
        for candidate in getattr(getattr(app, "router", None), "routes", ()):
            match, _ = candidate.matches(scope)
            if match is Match.FULL:
                route = candidate
                break
    path = getattr(route, "path", None)
    return str(path) if path else None


def _log(scope: Scope, route: str | None, status: int, seconds: float) -> None:
    state = scope.get("state") or {}
    access_log.info(
        "%s %s %d",
        scope["method"],
        route or "<unmatched>",
        status,
        extra={
            "method": scope["method"],
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
            "device_id": state.get("device_id"),
        },
    )


async def _unavailable(send: Send) -> None:
    body = (
        b'{"error":{"code":"service_unavailable","message":"the database is being restored '
        b'from a backup; retry shortly","details":{}}}'
    )
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", b"5"),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})
