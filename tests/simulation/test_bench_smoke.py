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
