"""The cyclic garbage collector is off while a push is applied (:mod:`server.gcpause`):
a push's ~100,000 live objects were walked by every collection during it."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from server.gcpause import collector_paused
from server.routers import sync
from tests.server.conftest import World, new_id
from tests.server.test_push_work import _customers


@pytest.fixture
def eager_collector() -> Iterator[list[int]]:
    """Collections of the young generation every 50 allocations, each one noted."""
    collected: list[int] = []

    def note(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            collected.append(info["generation"])

    threshold = gc.get_threshold()
    gc.set_threshold(50, *threshold[1:])
    gc.callbacks.append(note)
    try:
        yield collected
    finally:
        gc.callbacks.remove(note)
        gc.set_threshold(*threshold)


def test_no_collection_runs_while_a_push_is_applied(
    sqlite_world: World, eager_collector: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    during: list[int] = []
    real = sync.apply_push

    def watched(*args: Any, **kwargs: Any) -> Any:
        before = len(eager_collector)
        outcome = real(*args, **kwargs)
        during.append(len(eager_collector) - before)
        return outcome

    monkeypatch.setattr(sync, "apply_push", watched)
    rep = sqlite_world.phone("rep_a1")
    mutations = [rep.mutation("customers", new_id("c"), f) for f in _customers(60, "gc")]
    assert [r["status"] for r in rep.push(mutations)] == ["applied"] * 60
    assert during == [0]
    assert gc.isenabled()  # on again once the push answered
    assert eager_collector  # ... and it collects again (the request's other work)


def test_the_pause_nests_across_threads_and_leaves_a_disabled_collector_alone() -> None:
    assert gc.isenabled()
    entered, release = threading.Event(), threading.Event()

    def other() -> None:
        with collector_paused():
            entered.set()
            release.wait(5)

    with collector_paused():
        worker = threading.Thread(target=other)
        worker.start()
        assert entered.wait(5)
        assert not gc.isenabled()
    assert not gc.isenabled()  # the other push still runs
    release.set()
    worker.join(5)
    assert gc.isenabled()

    gc.disable()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # not ours to switch on
    finally:
        gc.enable()
