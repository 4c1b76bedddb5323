"""The short configuration of the convergence simulator, in the test suite.

Five devices (a manager on two phones, three reps), ~300 random CRM edits with
partitions, cut and duplicated deliveries, two server restarts, clocks skewed by up to
three days and customer reassignments — against the real server app (in process,
through FastAPI's TestClient as the SDK transport) on SQLite and on PostgreSQL. The
oracle (``tests/support/simulator.py``) must find nothing wrong; and with the server's
merge deliberately broken it must find something, which proves it can catch a bug.

The long configuration runs from ``python -m bench.simulate --long``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.simulator import SimConfig, broken_lww_merge, run_simulation

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("seed", [11, 12])
def test_short_simulation_converges_on_sqlite(seed: int, tmp_path: Path) -> None:
    config = SimConfig(seed=seed, db_url=f"sqlite:///{tmp_path / 'server.db'}", operations=300)
    result = run_simulation(config)
    assert result.ok, result.summary()
    # The run really exercised the hostile world (not a vacuous pass).
    stats = result.stats
    assert stats["acknowledged_writes"] > 150
    assert stats["server_restarts"] == 2
    assert stats.get("cut_before", 0) + stats.get("cut_after", 0) > 0
    assert stats.get("writes_superseded", 0) > 0


def test_short_simulation_converges_on_postgres(postgres_url: str) -> None:
    result = run_simulation(SimConfig(seed=13, db_url=postgres_url, operations=300))
    assert result.ok, result.summary()


def test_a_broken_merge_is_caught(tmp_path: Path) -> None:
    """The server's lww merge keeps the remote value: the oracle must see lost writes."""
    config = SimConfig(
        seed=11,
        db_url=f"sqlite:///{tmp_path / 'server.db'}",
        operations=300,
        tamper=broken_lww_merge,
    )
    result = run_simulation(config)
    assert not result.ok, "the simulator did not notice a merge that drops local lww edits"
    assert any("lost to an older write" in f for f in result.failures), result.summary()


def test_a_dangling_reference_is_explained_only_when_the_record_is_gone() -> None:
    """A stage change refused because its opportunity is gone is explained; the same
    refusal while the opportunity still exists on the server is not (reported ``False``,
    and the caller then demands that the customer was reassigned away)."""
    from tests.simulation.oracle import Oracle, ServerRow

    oracle = Oracle.__new__(Oracle)
    error = {
        "code": "validation_failed",
        "details": {
            "fields": [
                {
                    "field": "opportunity_id",
                    "code": "unknown_ref",
                    "message": "opportunity_id: no opportunities record o-1 in your scope",
                }
            ]
        },
    }
    row = ServerRow("opportunities", "o-1", "u-rep1", False, {}, {})
    oracle.rows = {("opportunities", "o-1"): row}
    assert oracle._dangling_refs(error) is False
    oracle.rows = {("opportunities", "o-1"): ServerRow("opportunities", "o-1", None, True, {}, {})}
    assert oracle._dangling_refs(error) is True
    oracle.rows = {}
    assert oracle._dangling_refs(error) is True
    other = {"code": "validation_failed", "details": {"fields": [{"code": "required"}]}}
    assert oracle._dangling_refs(other) is None
    assert oracle._dangling_refs({"code": "forbidden"}) is None
