"""The convergence simulator's configurations from the command line.

    python -m bench.simulate --long --seeds 10 --db sqlite
    python -m bench.simulate --long --seeds 10 --db postgres
    python -m bench.simulate --quick                 # the short configuration, 1 seed

``--long`` is the issue's configuration: 24 devices (a manager and 8 reps, two or three
phones each), 5,000 operations, every fault (partitions, cut and duplicated deliveries,
clock skew up to ±3 days, reassignments) and a *real* server process that is SIGKILLed
and restarted five times per run. Each seed gets a fresh database (a new SQLite file or
a new PostgreSQL database, dropped afterwards). Results are appended per seed to
``bench/results/convergence.json``; the exit status is non-zero if any seed failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.support.simulator import SimConfig, run_simulation  # noqa: E402

RESULTS = REPO / "bench" / "results" / "convergence.json"
POSTGRES_ADMIN_URL = os.environ.get(
    "FIELDSYNC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)

LONG = {"devices": 24, "reps": 8, "operations": 5000, "restarts": 5, "server": "process"}
SHORT = {"devices": 5, "reps": 3, "operations": 300, "restarts": 2, "server": "inprocess"}


@contextlib.contextmanager
def database(kind: str, work: Path) -> Iterator[str]:
    """A fresh SQLAlchemy URL of ``kind`` ("sqlite" or "postgres"), removed afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{work / f'sim-{uuid.uuid4().hex[:8]}.db'}"
        return
    import psycopg

    admin = POSTGRES_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://", 1)
    name = f"fs_sim_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{admin.rsplit('/', 1)[0]}/{name}".replace(
            "postgresql://", "postgresql+psycopg://", 1
        )
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(
    kind: str,
    seeds: list[int],
    shape: dict[str, Any],
    verbose: bool,
    output: Path | None = None,
) -> list[dict[str, Any]]:
    """Run ``seeds``; each result is saved to ``output`` as soon as it is known."""
    out = []
    for seed in seeds:
        with (
            tempfile.TemporaryDirectory(prefix="fieldsync-sim-") as tmp,
            database(kind, Path(tmp)) as url,
        ):
            config = SimConfig(
                seed=seed,
                db_url=url,
                work_dir=Path(tmp),
                log=print if verbose else None,
                **shape,
            )
            started = time.monotonic()
            result = run_simulation(config)
            print(result.summary(), flush=True)
            out.append(
                {
                    "seed": seed,
                    "db": kind,
                    "ok": result.ok,
                    "failures": result.failures[:50],
                    "failure_count": len(result.failures),
                    "stats": result.stats,
                    "seconds": round(time.monotonic() - started, 1),
                    "config": shape,
                    "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
                }
            )
            if output is not None:
                save(out[-1:], output)
    return out


def save(entries: list[dict[str, Any]], path: Path = RESULTS) -> None:
    """Append ``entries`` to the results file (locked: SQLite and PostgreSQL runs may
    finish at the same time)."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(Path(tempfile.gettempdir()) / "fieldsync-convergence.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        existing: dict[str, Any] = {"runs": []}
        if path.exists():
            with contextlib.suppress(ValueError):
                existing = json.loads(path.read_text())
        existing.setdefault("runs", []).extend(entries)
        existing["machine"] = {"cores": os.cpu_count(), "python": platform.python_version()}
        path.write_text(json.dumps(existing, indent=2, ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.simulate", description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--long", action="store_true", help="the long configuration")
    mode.add_argument("--quick", action="store_true", help="the short configuration, one seed")
    parser.add_argument("--seeds", type=int, default=None, help="how many seeds (1..N)")
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--operations", type=int, default=None)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--no-save", action="store_true")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C: servers stopped, temporary databases dropped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    shape = dict(LONG if args.long else SHORT)
    if args.operations:
        shape["operations"] = args.operations
    count = args.seeds or (10 if args.long else 1)
    seeds = list(range(args.first_seed, args.first_seed + count))
    entries = run(args.db, seeds, shape, args.verbose, None if args.no_save else args.output)
    failed = [e["seed"] for e in entries if not e["ok"]]
    print(f"{len(entries) - len(failed)}/{len(entries)} seeds passed on {args.db}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
