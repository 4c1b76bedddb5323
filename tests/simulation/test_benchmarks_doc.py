"""docs/benchmarks.md is what ``make bench`` writes from bench/results/ — not a hand edit.

The hand-written analysis lives in docs/performance.md; if the generated page drifted from
the JSON figures (a figure typed in by hand, a result file not re-rendered), the page would
quote numbers no run produced."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from bench.__main__ import RESULTS, _push_rows, render

REPO = Path(__file__).resolve().parents[2]


def _body(text: str) -> list[str]:
    # the third line says when the page was written; a run names the benches it ran
    return [
        line
        for i, line in enumerate(text.splitlines())
        if i != 2 and not line.startswith("Benches in this run:")
    ]


def test_benchmarks_page_is_the_rendering_of_the_results(tmp_path: Path) -> None:
    rendered = render(RESULTS, tmp_path / "benchmarks.md")
    on_disk = (REPO / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    assert _body(on_disk) == _body(rendered), (
        "docs/benchmarks.md differs from render(bench/results): run "
        "`python -c 'from bench.__main__ import *; render(RESULTS, DOCS)'` after a bench"
    )
    assert "performance.md" in rendered


def test_push_rows_say_whether_each_aim_is_met() -> None:
    push = json.loads((RESULTS / "server.json").read_text())["push"]
    lite = copy.deepcopy(push)
    aim = lite["aims"]["sqlite_push_at_100k_per_s"]
    lite["sqlite_at_size"]["push_at_size_per_s"] = aim - 1
    (below,) = [r for r in _push_rows(lite, ["sqlite", "postgresql"]) if "stored records" in r]
    assert "**not met**" in below
    lite["sqlite_at_size"]["push_at_size_per_s"] = aim
    (at,) = [r for r in _push_rows(lite, ["sqlite", "postgresql"]) if "stored records" in r]
    assert "(met;" in at

    writers = copy.deepcopy(push)
    w = writers["postgresql_writers"]
    w["ratio"] = writers["aims"]["pg_writers_ratio"]
    w["four_writers_two_instances"]["per_s"] = writers["aims"]["pg_writers_total_per_s"]
    (row,) = [r for r in _push_rows(writers, ["sqlite", "postgresql"]) if "4 writers" in r]
    assert "; met)" in row
    w["four_writers_two_instances"]["per_s"] -= 1
    (row,) = [r for r in _push_rows(writers, ["sqlite", "postgresql"]) if "4 writers" in r]
    assert "**not met**" in row
