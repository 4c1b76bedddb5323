"""The server's operational machinery, one bundle per app: the fleet-health recorder
and the background tasks that keep it, compaction, the search indexer and the webhook
dispatcher running.

Built by :func:`server.app.build_context` from :class:`~server.settings.Settings` and
hung on :class:`~server.context.ServerContext` as ``ops``; :meth:`Operations.start` and
:meth:`Operations.stop` run in the app's lifespan.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from sqlalchemy import Engine

from .background import Foreground, Pause, Periodic, yielding
from .crm.indexing import catch_up_search
from .db import WAL_CHECKPOINT_INTERVAL_S, checkpoint_task
from .fleet.recorder import ActivityRecorder
from .integration.dispatcher import DispatchConfig, Dispatcher
from .maintenance.backups import RestoreGate
from .maintenance.compaction import run_compaction
from .observability.metrics import Metrics
from .settings import Settings


@dataclass
class Operations:
    activity: ActivityRecorder
    metrics: Metrics
    tasks: list[Periodic] = field(default_factory=list)
    #: Closed while a restore from the admin API runs (other requests answer 503).
    restore_gate: RestoreGate = field(default_factory=RestoreGate)
    #: Pushes running now: the search catch-up gives way to them.
    foreground: Foreground = field(default_factory=Foreground)

    @cached_property
    def migration_head(self) -> str | None:
        """The newest migration of this code (``/readyz`` compares the database to it)."""
        from alembic.script import ScriptDirectory

        from .migrate import alembic_config

        return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()

    def start(self) -> None:
        for task in self.tasks:
            task.start()

    def stop(self) -> None:
        for task in reversed(self.tasks):
            task.stop()


def build_operations(settings: Settings, engine: Engine) -> Operations:
    activity = ActivityRecorder(engine)
    metrics = Metrics(enabled=settings.metrics_enabled)
    metrics.attach(engine)
    # One switch for every task: a restore from the admin API holds them all.
    pause = Pause()
    foreground = Foreground()
    tasks = [
        Periodic(
            "health-flush",
            settings.health_flush_interval_s,
            activity.flush,
            run_at_stop=True,
            pause=pause,
        ),
        Periodic(
            "compaction",
            settings.compaction_interval_s,
            lambda: run_compaction(engine, settings, metrics),
            run_at_stop=False,
            pause=pause,
        ),
        # Search entries of the records written since (server/crm/indexing.py).
        Periodic(
            "search-index",
            settings.search_index_interval_s,
            # At most half of each interval's worth of work per tick, and none while
            # pushes come (up to a bounded deferral): a background task, which must not
            # take the cores (the GIL) from the pushes it indexes.
            yielding(
                lambda: catch_up_search(
                    engine, batch=200, wait=False, budget_s=settings.search_index_interval_s / 2
                ),
                foreground,
                quiet_s=settings.search_index_yield_s,
                max_defer_s=settings.search_index_max_defer_s,
                # a turn taken in a quiet moment gives up when a push comes (cut at the
                # next record); one forced by max_defer_s runs its share beside them
                quiet=lambda: catch_up_search(
                    engine,
                    batch=200,
                    wait=False,
                    budget_s=settings.search_index_interval_s / 2,
                    stop=foreground.active,
                ),
                # while pushes come: a small share of the catch-up (no GIN settling),
                # so the first search after a burst does not pay for all of it — in the
                # gaps between pushes only (cut at the next record when one starts)
                busy=(
                    (
                        lambda: catch_up_search(
                            engine,
                            batch=100,
                            wait=False,
                            budget_s=settings.search_index_busy_budget_s,
                            settle=False,
                            stop=foreground.active,
                        )
                    )
                    if settings.search_index_busy_budget_s > 0
                    else None
                ),
            ),
            run_at_stop=False,
            pause=pause,
        ),
        # Outbound webhooks (server/integration): events -> signed, retried deliveries.
        Periodic(
            "webhooks",
            settings.webhook_interval_s,
            Dispatcher(engine, DispatchConfig.of(settings)).run_once,
            run_at_stop=False,
            pause=pause,
        ),
    ]
    checkpoint = checkpoint_task(engine)
    if checkpoint is not None:  # SQLite: WAL checkpoints beside the requests (server/db.py)
        tasks.append(
            Periodic(
                "wal-checkpoint",
                WAL_CHECKPOINT_INTERVAL_S,
                checkpoint,
                run_at_stop=False,
                pause=pause,
            )
        )
    return Operations(
        activity=activity,
        metrics=metrics,
        tasks=tasks,
        restore_gate=RestoreGate(pause),
        foreground=foreground,
    )
