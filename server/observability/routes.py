"""``/healthz`` (the process is alive), ``/readyz`` (it can serve: the database answers
and its schema is at this code's migration head), ``/metrics`` (Prometheus).

``/healthz`` touches nothing, so a slow database never gets a healthy process killed by
its supervisor; ``/readyz`` is what a load balancer should route on. Neither needs
sign-in; ``/metrics`` neither (expose it only on the internal network, or disable it
with ``FIELDSYNC_METRICS_ENABLED=false``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from ..deps import ContextDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, Any]:
    """The process is alive (no database access)."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={503: {"description": "not ready: the database is unreachable or behind"}},
)
def readyz(context: ContextDep) -> JSONResponse:
    """Ready to serve: the database answers and its migrations are current."""
    head = context.ops.migration_head
    try:
        with context.engine.connect() as conn:
            current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except Exception as exc:
        down = {"status": "unavailable", "database": f"unreachable ({type(exc).__name__})"}
        return JSONResponse(down, status_code=503)
    migrations = {"current": current, "head": head}
    if current != head:
        body: dict[str, Any] = {"status": "unavailable", "database": "ok", "migrations": migrations}
        return JSONResponse(body, status_code=503)
    return JSONResponse({"status": "ready", "database": "ok", "migrations": migrations})


@router.get("/metrics", response_class=Response)
def metrics(context: ContextDep) -> Response:
    """Prometheus text format (docs/server.md lists the metrics)."""
    if not context.ops.metrics.enabled:
        return Response(status_code=404)
    return Response(context.ops.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
