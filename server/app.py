"""The FastAPI application: ``create_app(settings)``.

Wires the routers, the one error handler (every error leaves as
``{"error": {"code", "message", "details"}}`` with the status of
:data:`server.errors.HTTP_STATUS`), gzip in both directions, and the per-app
:class:`~server.context.ServerContext`.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from sync_protocol import ErrorCode, ProtocolError
from sync_protocol.hlc import wall_clock_ms

from .attachments import install_attachments
from .auth import TokenSigner
from .console import install_console
from .context import ServerClock, ServerContext
from .db import make_engine, make_session_factory
from .errors import RateLimited, http_status
from .fleet import routes as fleet_routes
from .integration import install_integration
from .live import install_live
from .maintenance import routes as maintenance_routes
from .manager import install_manager
from .middleware import CompressionMiddleware, RequestBodyMiddleware
from .observability import routes as observability_routes
from .observability.middleware import ObservabilityMiddleware
from .observability.tracing import install_tracing
from .openapi import install as install_openapi
from .operations import build_operations
from .routers import admin, auth, sync
from .schema_config import load_schema
from .settings import Settings
from .throttle import LoginThrottle

log = logging.getLogger("fieldsync.server")


def _unavailable_errors() -> tuple[type[Exception], ...]:
    errors: list[type[Exception]] = [sqlalchemy.exc.OperationalError, sqlalchemy.exc.TimeoutError]
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency; SQLite needs none
        return tuple(errors)
    return (*errors, psycopg.OperationalError)


_UNAVAILABLE = _unavailable_errors()

_HTTP_CODES = {
    400: ErrorCode.VALIDATION_FAILED,
    401: ErrorCode.UNAUTHORIZED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.NOT_FOUND,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    422: ErrorCode.VALIDATION_FAILED,
}


def _error_response(
    status: int, code: ErrorCode | str, message: str, details: dict[str, Any] | None = None
) -> JSONResponse:
    body = {"error": {"code": str(code), "message": message, "details": details or {}}}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


def _note_error(request: Request, code: ErrorCode | str) -> None:
    """Record the error on the device that made the request (fleet health), if known."""
    device_id = getattr(request.state, "device_id", None)
    if device_id is None:
        return
    context: ServerContext = request.app.state.fieldsync
    route = request.scope.get("route")
    endpoint = str(getattr(route, "path", None) or request.url.path)
    context.ops.activity.error(device_id, now_ms=wall_clock_ms(), code=str(code), endpoint=endpoint)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ProtocolError)
    async def protocol_error(request: Request, exc: ProtocolError) -> JSONResponse:
        _note_error(request, exc.code)
        response = _error_response(http_status(exc), exc.code, exc.message, exc.details)
        if isinstance(exc, RateLimited):
            response.headers["Retry-After"] = str(exc.retry_after_s)
        return response

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        _note_error(request, ErrorCode.VALIDATION_FAILED)
        fields = [
            {
                "field": ".".join(str(p) for p in err.get("loc", ()) if p != "body"),
                "code": str(err.get("type", "invalid")),
                "message": str(err.get("msg", "invalid")),
            }
            for err in exc.errors()
        ]
        return _error_response(
            422, ErrorCode.VALIDATION_FAILED, "the request is malformed", {"fields": fields}
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, ErrorCode.INTERNAL)
        _note_error(request, code)
        return _error_response(exc.status_code, code, str(exc.detail))

    async def database_busy(request: Request, exc: Exception) -> JSONResponse:
        _note_error(request, ErrorCode.SERVICE_UNAVAILABLE)
        # A lock wait that timed out, a dropped connection, a restarting database, every
        # pooled connection taken for ``pool_timeout`` (a connect storm after a restart):
        # the transaction rolled back or never began and nothing changed, so the client
        # may simply retry (pushes are idempotent by mutation id). Not a 500: not a bug.
        log.warning(
            "database unavailable on %s %s: %s",
            request.method,
            request.url.path,
            type(getattr(exc, "orig", None) or exc).__name__,
        )
        response = _error_response(
            503,
            ErrorCode.SERVICE_UNAVAILABLE,
            "the database is busy; nothing was changed, retry shortly",
        )
        response.headers["Retry-After"] = "1"
        return response

    # The pool's wait for a connection (``sqlalchemy.exc.TimeoutError``, not an
    # OperationalError) and psycopg's own errors on the connections it is used directly
    # for (the event loop's PostgreSQL reads) are the same condition.
    for unavailable in _UNAVAILABLE:
        app.add_exception_handler(unavailable, database_busy)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The path, never the body or headers: those may hold passwords and tokens.
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        _note_error(request, ErrorCode.INTERNAL)
        return _error_response(500, ErrorCode.INTERNAL, "internal server error")


def build_context(settings: Settings) -> ServerContext:
    engine = make_engine(settings.database_url)
    return ServerContext(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        ops=build_operations(settings, engine),
        signer=TokenSigner(settings.secret_key, settings.access_token_ttl_s),
        throttle=LoginThrottle(
            engine,
            max_failures_per_user=settings.login_max_failures_per_user,
            max_attempts_per_address=settings.login_max_attempts_per_address,
            window_s=settings.login_window_s,
        ),
        clock=ServerClock(ahead_ms=settings.max_drift_ms),
        schema=load_schema(settings.schema_source),
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app. ``settings`` defaults to ``Settings()`` read from the environment."""
    settings = settings or Settings()
    context = build_context(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        context.ops.start()
        await live.start()
        try:
            yield
        finally:
            await live.stop()
            if context.loop_reader is not None:
                await context.loop_reader.aclose()  # the poll's connection (routers/sync.py)
            context.ops.stop()  # the last health flush happens here
            if tracer is not None:
                tracer.shutdown()  # exports the spans still buffered
            context.engine.dispose()

    app = FastAPI(
        title="Fieldsync",
        version="0.1.0",
        description="Offline-first CRM sync server: push, pull, auth, admin.",
        lifespan=lifespan,
        docs_url=None,  # served offline by the console package (server/console/docs.py)
        redoc_url=None,
    )
    app.state.fieldsync = context
    install_openapi(app)  # bearer scheme + the statuses every route answers
    _install_error_handlers(app)
    app.add_middleware(
        CompressionMiddleware,
        minimum_size=settings.gzip_min_bytes,
        compresslevel=settings.gzip_level,
    )
    app.add_middleware(RequestBodyMiddleware, max_body_bytes=settings.max_body_bytes)
    # A poll with nothing new is answered here, before the body middleware and FastAPI
    # (everything else passes through): routers/sync.py, FastPoll.
    app.add_middleware(sync.FastPoll, context=context)
    # Outermost (added last): request id, latency and the access line cover everything.
    app.add_middleware(
        ObservabilityMiddleware,
        metrics=context.ops.metrics,
        access_log=settings.access_log,
        paused=context.ops.restore_gate,
    )
    for module in (observability_routes, auth, sync, admin):
        app.include_router(module.router)
    live = install_live(app, context)  # /v1/sync/events (docs/protocol.md)
    app.include_router(fleet_routes.router)  # /v1/manager/devices/{id}/diagnosis
    app.include_router(maintenance_routes.router)  # /v1/admin/backups
    install_attachments(app)  # /v1/attachments (docs/attachments.md)
    install_manager(app)  # /v1/manager, /v1/admin/teams (docs/manager-api.md)
    install_integration(app)  # /v1/integration: API keys, webhooks, change feed
    install_console(app)  # /, /console/…, /docs (docs/console.md)
    tracer = install_tracing(
        app,
        context.engine,
        endpoint=settings.tracing_endpoint,
        service_name=settings.tracing_service_name,
    )
    return app


def serve_app() -> FastAPI:
    """:func:`create_app` as ``fieldsync serve`` runs it (the uvicorn factory): once the
    app is built, every object it holds so far — modules, the schema, pypinyin's
    dictionaries, routes: ~350,000 — is moved out of the garbage collector's sight
    (:func:`gc.freeze`). They live as long as the process; left in view, every full
    collection walked them all (~250 ms each, about one per two 1,000-mutation pushes).

    The youngest generation is also collected less often (every
    :data:`GC_YOUNG_THRESHOLD` allocations instead of 700): a push holds ~100,000 live
    objects while it runs, and each of ~250 young collections per 1,000-mutation push
    went through the survivors again (GC time per such push ~32 → ~23 ms)."""
    app = create_app()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)
    return app


#: Allocations between two collections of the youngest generation in a served process.
GC_YOUNG_THRESHOLD = 10_000
