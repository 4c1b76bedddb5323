"""``fieldsync maintain``: one compaction run, for cron (the server also compacts on its
own every ``compaction_interval_s``; the PostgreSQL advisory lock keeps runs from
overlapping either way)."""

from __future__ import annotations

import argparse
import json


def cmd_maintain(args: argparse.Namespace) -> int:
    from ..cli import _settings
    from ..db import make_engine
    from ..observability.metrics import Metrics
    from .compaction import history_size, run_compaction

    settings = _settings(args.database_url)
    engine = make_engine(settings.database_url)
    try:
        result = run_compaction(engine, settings, Metrics(enabled=False))
        with engine.connect() as conn:
            size = history_size(conn)
    finally:
        engine.dispose()
    summary = {
        **result.as_dict(),
        "live_rows": size.live,
        "history_rows": size.history,
        "history_ratio": round(size.ratio, 3),
        "audit_rows": size.audit,
    }
    if args.json:
        print(json.dumps(summary))
    elif result.skipped:
        print("another server is compacting right now; nothing done")
    else:
        print(
            f"removed {result.tombstones} tombstones, {result.evictions} evictions, "
            f"{result.idempotency} idempotency records and {result.audit} audit entries "
            f"in {result.seconds:.1f} s; purge horizon {result.purge_horizon}; history "
            f"{size.history} rows for {size.live} live ({size.ratio:.2f}x)"
        )
    return 0


def add_maintain_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    maintain = sub.add_parser(
        "maintain", help="compact now: old tombstones, idempotency records, audit entries"
    )
    maintain.add_argument("--json", action="store_true", help="print the result as JSON")
    maintain.add_argument("--database-url", default=None)
    maintain.set_defaults(func=cmd_maintain)
