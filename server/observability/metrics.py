"""Prometheus metrics (``GET /metrics``), one registry per app.

What is counted, and where:

* ``fieldsync_http_request_duration_seconds{route, method, status}`` — every request,
  timed by the middleware (the route *template*, so label values stay few);
  ``route="/v1/sync/push"``, ``"/v1/sync/pull"``, ``"/v1/auth/login"`` are the sync
  and sign-in latencies;
* ``fieldsync_mutations_total{status}``, ``fieldsync_conflicts_opened_total``,
  ``fieldsync_conflicts_resolved_total``, ``fieldsync_pull_changes_total`` — added once
  per push or pull from counts the request already has (no extra pass over records on
  the hot path beyond tallying the statuses of the results);
* ``fieldsync_devices{state}`` (``active``: seen in the last 24 h, ``live``: in the last
  5 minutes, ``revoked``) and ``fieldsync_db_pool_connections{state}`` — read when
  scraped, never on a request;
* ``fieldsync_compaction_runs_total{result}``, ``fieldsync_compaction_deleted_total{kind}``
  and ``fieldsync_compaction_last_success_timestamp_seconds`` — by the compactor.

With several worker processes each keeps its own counters, so a scrape sees the one
process that answered. For one view of all of them set
``FIELDSYNC_METRICS_MULTIPROCESS_DIR``: ``fieldsync serve`` then points
prometheus-client's multiprocess mode at that directory (``PROMETHEUS_MULTIPROC_DIR``,
emptied at start) and ``/metrics`` aggregates every worker's files (the scrape-time
gauges are then per process, labelled ``pid``).
"""

from __future__ import annotations

import os
from collections import Counter as Tally
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select

from sync_protocol import Mutation, MutationResult

#: Latency buckets (seconds): sync requests range from ~2 ms polls to multi-second pushes.
BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
ACTIVE_WINDOW = timedelta(hours=24)
LIVE_WINDOW = timedelta(minutes=5)


class Metrics:
    """The app's metrics. ``enabled=False`` keeps the same calls as no-ops (for the
    overhead benchmark and for deployments that do not scrape)."""

    def __init__(self, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self.registry = CollectorRegistry(auto_describe=True)
        self._scrape_time: list[Collector] = []
        self._children: dict[tuple[str, str, int], Any] = {}
        r = self.registry
        self.request_seconds = Histogram(
            "fieldsync_http_request_duration_seconds",
            "Time to answer a request, by route template, method and status.",
            ("route", "method", "status"),
            buckets=BUCKETS,
            registry=r,
        )
        self.mutations = Counter(
            "fieldsync_mutations", "Pushed mutations by result status.", ("status",), registry=r
        )
        self.conflicts_opened = Counter(
            "fieldsync_conflicts_opened", "Conflicts opened by pushes.", registry=r
        )
        self.conflicts_resolved = Counter(
            "fieldsync_conflicts_resolved", "Conflicts resolved by pushes.", registry=r
        )
        self.pull_changes = Counter(
            "fieldsync_pull_changes", "Changes served by pulls.", registry=r
        )
        self.compaction_runs = Counter(
            "fieldsync_compaction_runs", "Compaction runs by result.", ("result",), registry=r
        )
        self.compaction_deleted = Counter(
            "fieldsync_compaction_deleted",
            "Rows deleted by compaction, by kind.",
            ("kind",),
            registry=r,
        )
        self.compaction_last_success = Gauge(
            "fieldsync_compaction_last_success_timestamp_seconds",
            "When compaction last finished (Unix time).",
            registry=r,
            multiprocess_mode="max",
        )

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        if not self.enabled:
            return
        key = (route, method, status)
        child = self._children.get(key)
        if child is None:  # a few dozen (route, method, status) triples in all
            child = self._children[key] = self.request_seconds.labels(route, method, str(status))
        child.observe(seconds)

    def observe_push(
        self, mutations: Sequence[Mutation], results: Sequence[MutationResult]
    ) -> None:
        if not self.enabled:
            return
        for status, n in Tally(r.status.value for r in results).items():
            self.mutations.labels(status).inc(n)
        opened = sum(len(r.conflict_ids) for r in results if r.conflict_ids)
        if opened:
            self.conflicts_opened.inc(opened)
        resolved = sum(len(m.resolves) for m in mutations if m.resolves)
        if resolved:
            self.conflicts_resolved.inc(resolved)

    def observe_pull(self, changes: int) -> None:
        if self.enabled and changes:
            self.pull_changes.inc(changes)

    def attach(self, engine: Engine) -> None:
        """Add the scrape-time gauges (devices, database pool) for ``engine``."""
        collector = _StateCollector(engine)
        self._scrape_time.append(collector)
        self.registry.register(collector)

    def exposition(self) -> bytes:
        """The text format of every metric (every worker's, in multiprocess mode)."""
        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if directory:
            from prometheus_client import multiprocess

            merged = CollectorRegistry()
            multiprocess.MultiProcessCollector(merged, path=directory)  # type: ignore[no-untyped-call]
            for collector in self._scrape_time:
                merged.register(collector)
            return generate_latest(merged)
        return generate_latest(self.registry)


class _StateCollector(Collector):
    """Gauges read when scraped: devices by state, and the database connection pool."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterable[Any]:
        devices = GaugeMetricFamily(
            "fieldsync_devices",
            "Devices: active (seen in 24 h), live (seen in 5 min), revoked.",
            labels=["state"],
        )
        for state, count in self._device_counts().items():
            devices.add_metric([state], count)
        yield devices
        pool = GaugeMetricFamily(
            "fieldsync_db_pool_connections",
            "Database connections of this process's pool: size, checked_out, overflow.",
            labels=["state"],
        )
        for state, count in self._pool().items():
            pool.add_metric([state], count)
        yield pool

    def _device_counts(self) -> dict[str, int]:
        from ..accounts import utcnow
        from ..models import Device

        now = utcnow()
        working = Device.revoked_at.is_(None)
        wanted = {
            "active": (Device.last_seen >= now - ACTIVE_WINDOW) & working,
            "live": (Device.last_seen >= now - LIVE_WINDOW) & working,
            "revoked": Device.revoked_at.is_not(None),
        }
        counts: dict[str, int] = {}
        try:
            with self.engine.connect() as conn:
                for state, where in wanted.items():
                    stmt = select(func.count()).select_from(Device).where(where)
                    counts[state] = int(conn.execute(stmt).scalar_one())
        except Exception:  # a scrape must answer even when the database does not
            return {}
        return counts

    def _pool(self) -> dict[str, int]:
        pool: Any = self.engine.pool
        found: dict[str, int] = {}
        for state, name in (
            ("size", "size"),
            ("checked_out", "checkedout"),
            ("overflow", "overflow"),
        ):
            method = getattr(pool, name, None)
            if callable(method):
                found[state] = int(method())
        return found
