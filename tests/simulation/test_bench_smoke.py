"""Smoke runs of the simulation/fleet benches so they do not rot (figures are not judged:
performance lives in ``bench/``; only that each bench runs and its audit holds)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import fleet_bench, simulate
from bench.__main__ import render

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def test_fleet_and_pull_benches_run_quick(tmp_path: Path) -> None:
    out = tmp_path / "fleet.json"
    assert fleet_bench.main(["--quick", "--db", "sqlite", "--output", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["fleet"]["zero_lost_or_duplicated"], data["fleet"]["audit"]
    assert data["fleet"]["syncs"] > 0
    assert [p["changes"] for p in data["pull_scaling"]] == [100, 100]

    simulate_out = tmp_path / "convergence.json"
    assert simulate.main(["--quick", "--operations", "60", "--output", str(simulate_out)]) == 0
    assert json.loads(simulate_out.read_text())["runs"][0]["ok"]

    report = render(tmp_path, tmp_path / "benchmarks.md")
    assert "cores" in report
    assert "devices syncing at once" in report
    assert "Pull of 100 changes" in report
    assert "Convergence simulator" in report


def test_push_bench_stale_phase_times_a_planner_without_statistics() -> None:
    """The PostgreSQL-without-statistics phase really measures a stale planner (reltuples
    0 while its batches are timed) against the same database analysed."""
    from bench import push_bench

    out = push_bench.pg_stale_phase(3_000)
    assert out["planner_reltuples_records"] in (0, 0.0, -1, -1.0)
    assert not out["autoanalyzed"]
    assert out["planner_after_analyze"]["analyzed"]
    assert out["planner_after_analyze"]["reltuples"] >= 3_000
    assert out["push_at_size_per_s"] > 0 and out["push_at_size_fresh_statistics_per_s"] > 0
    assert out["stale_vs_fresh_at_size"] > 0
