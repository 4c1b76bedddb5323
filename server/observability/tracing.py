"""Optional OpenTelemetry traces: the standard FastAPI and SQLAlchemy instrumentation,
exported over OTLP/HTTP, switched on by ``FIELDSYNC_TRACING_ENDPOINT``.

Nothing here runs unless the setting is given, and the OpenTelemetry packages (the
``otel`` extra) are imported only then, so a server without them starts as before. A
span names the route template (``POST /v1/sync/push``), never the query string; SQL
spans carry the statement with its placeholders (SQLAlchemy's instrumentation does not
record bound values). Request and response headers are not captured.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

# Probes and scrapes would drown the traces that matter.
_EXCLUDED_URLS = "healthz,readyz,metrics"


class TracingUnavailable(RuntimeError):
    """``tracing_endpoint`` is set but the ``otel`` extra is not installed."""


def _drop_query_string(span: Any, scope: dict[str, Any]) -> None:
    """The instrumentation records the full URL; a query string can hold a customer's
    name (``?q=``), so the URL attributes are overwritten with the path alone."""
    if span is None or not span.is_recording():
        return
    path = scope.get("path", "")
    span.set_attribute("http.url", path)
    span.set_attribute("http.target", path)
    span.set_attribute("url.full", path)
    span.set_attribute("url.query", "")


def install_tracing(
    app: FastAPI, engine: Engine, *, endpoint: str | None, service_name: str
) -> Any | None:
    """Instrument ``app`` and ``engine`` when ``endpoint`` is set; return the tracer
    provider (the caller shuts it down to flush the last spans), or None when off."""
    if not endpoint:
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise TracingUnavailable(
            "FIELDSYNC_TRACING_ENDPOINT is set but OpenTelemetry is not installed: "
            "pip install 'fieldsync[otel]'"
        ) from exc

    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    exporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=1000))
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=provider,
        excluded_urls=_EXCLUDED_URLS,
        server_request_hook=_drop_query_string,
    )
    # The instrumentation declares SQLAlchemy < 2.1 and instruments nothing on 2.1
    # unless told to skip that check; it only hooks the engine's public events, which
    # 2.1 keeps (tests/server/observability/test_tracing.py proves the spans arrive).
    SQLAlchemyInstrumentor().instrument(
        engine=engine, tracer_provider=provider, skip_dep_check=True
    )
    log.info("tracing on: OTLP/HTTP to %s as %s", endpoint, service_name)
    return provider
