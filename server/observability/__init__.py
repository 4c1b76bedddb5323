"""Observability: structured logs with request ids (``logs``), Prometheus metrics
(``metrics``), the per-request middleware, ``/healthz``, ``/readyz`` and ``/metrics``
(``routes``), and optional OpenTelemetry traces (``tracing``). See docs/server.md."""
