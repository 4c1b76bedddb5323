"""The background search catch-up gives way to pushes (issue 19): its pinyin work holds
the GIL, so while pushes come it skips its turn — but never for longer than
``search_index_max_defer_s`` in a row."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from server import operations
from server.background import Foreground, Periodic, yielding
from tests.server.conftest import World, build_world, customer_fields, new_id


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_yielding_skips_while_the_foreground_is_busy_and_defers_at_most_so_long() -> None:
    clock = FakeClock()
    fg = Foreground(clock)
    ran: list[float] = []
    task = yielding(lambda: ran.append(clock.now), fg, quiet_s=1.0, max_defer_s=5.0)

    task()  # no push ever ran
    assert ran == [1000.0]
    with fg.running():
        task()  # a push is running
        clock.now += 0.5
    task()  # one ended 0 s ago
    clock.now += 0.9
    task()  # 0.9 s ago
    assert ran == [1000.0]
    clock.now += 0.2
    task()  # quiet for 1.1 s
    assert ran == pytest.approx([1000.0, 1001.6])

    # A sustained burst: pushes back to back; the task still runs every 5 s.
    for _ in range(30):
        with fg.running():
            task()
            clock.now += 0.5
    assert ran[1:] == pytest.approx([1001.6, 1006.6, 1012.1])

    off = yielding(lambda: ran.append(-1), fg, quiet_s=0, max_defer_s=5.0)
    with fg.running():
        off()
    assert ran[-1] == -1

    # ``quiet``: what a turn taken in a quiet moment runs (a forced one runs ``task``)
    turns: list[str] = []
    both = yielding(
        lambda: turns.append("forced"),
        fg,
        quiet_s=1.0,
        max_defer_s=5.0,
        quiet=lambda: turns.append("quiet"),
    )
    clock.now += 2
    both()
    for _ in range(12):
        with fg.running():
            both()
            clock.now += 0.5
    assert turns == ["quiet", "forced"]
    never = yielding(lambda: turns.append("task"), fg, quiet_s=0, max_defer_s=5.0, quiet=list)
    never()
    assert turns[-1] == "task"

    # ``busy``: what runs instead of a turn given way
    shared: list[str] = []
    small = yielding(
        lambda: shared.append("full"),
        fg,
        quiet_s=1.0,
        max_defer_s=5.0,
        busy=lambda: shared.append("small"),
    )
    with fg.running():
        small()
        clock.now += 0.5
    clock.now += 2
    small()
    assert shared == ["small", "full"]


@pytest.fixture
def quiet_world(sqlite_url: str) -> Iterator[World]:
    # No background thread: the test runs the search task's tick itself.
    w, client = build_world(sqlite_url, search_index_interval_s=0)
    with client:
        yield w
    w.context.engine.dispose()


def test_the_search_catch_up_skips_its_tick_right_after_a_push(
    quiet_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    ops = quiet_world.context.ops
    [search] = [t for t in ops.tasks if t.name == "search-index"]
    assert isinstance(search, Periodic)
    calls: list[Any] = []
    monkeypatch.setattr(operations, "catch_up_search", lambda *a, **k: calls.append(k))
    clock = FakeClock()
    monkeypatch.setattr(ops.foreground, "clock", clock)

    search.task()
    assert len(calls) == 1  # nothing pushed yet: the tick runs
    # ... and gives up at the next record when a push comes (a quiet turn)
    assert calls[0]["stop"] == ops.foreground.active

    rep = quiet_world.phone("rep_a1")
    assert rep.push_one("customers", new_id("c"), customer_fields())["status"] == "applied"
    search.task()
    # the push just ended: the tick gives way — to a small share of the catch-up only
    # (search_index_busy_budget_s, no GIN settling)
    assert len(calls) == 2
    assert calls[1]["budget_s"] == quiet_world.context.settings.search_index_busy_budget_s
    assert calls[1]["settle"] is False
    # ... and only between pushes: it stops while one runs
    stop = calls[1]["stop"]
    assert stop() is False
    with ops.foreground.running():
        assert stop() is True
    assert stop() is False
    clock.now += 1.5  # the default search_index_yield_s is 1 s
    search.task()
    assert len(calls) == 3 and "settle" not in calls[2]  # a full turn, settling too
    assert calls[2]["stop"] == ops.foreground.active
    # a turn forced by search_index_max_defer_s (10 s) under a sustained burst: not stopped
    while len(calls) == 3 or calls[-1].get("settle") is False:
        with ops.foreground.running():
            search.task()
            clock.now += 0.5
    assert "stop" not in calls[-1] and "settle" not in calls[-1]
