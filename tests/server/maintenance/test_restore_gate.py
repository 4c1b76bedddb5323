"""A restore holds the process's background tasks (server/background.py ``Pause``):
entering the gate waits for a run in progress to end, and no run starts until the
restore is over. Without it the search indexer (every second) met ``pg_restore
--clean`` in the middle of a restore and PostgreSQL answered "deadlock detected"."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from server.background import Pause, Periodic
from server.maintenance.backups import RestoreGate
from server.manager.backup import BackupError
from server.operations import build_operations
from server.settings import Settings


def test_entering_waits_for_the_run_in_progress_and_holds_the_next() -> None:
    started, finish = threading.Event(), threading.Event()
    runs: list[str] = []

    def task() -> None:
        runs.append("run")
        started.set()
        finish.wait(10)

    pause = Pause()
    gate = RestoreGate(pause)
    periodic = Periodic("t", 3600, task, run_at_stop=False, pause=pause)
    worker = threading.Thread(target=periodic._run_once)
    worker.start()
    assert started.wait(10)

    entered = threading.Event()

    def restore() -> None:
        with gate:
            entered.set()
            periodic._run_once()  # a tick that falls during the restore does nothing
            runs.append("restored")

    restorer = threading.Thread(target=restore)
    restorer.start()
    assert not entered.wait(0.3)  # the run in progress still holds the database
    assert gate.active  # requests are already turned away meanwhile
    finish.set()
    restorer.join(10)
    worker.join(10)
    assert entered.is_set()
    assert runs == ["run", "restored"]
    assert not gate.active and not pause.held
    periodic._run_once()  # after the restore the task runs again
    assert runs == ["run", "restored", "run"]


def test_a_run_that_does_not_end_makes_the_restore_give_up_cleanly() -> None:
    pause = Pause()
    gate = RestoreGate(pause)
    gate.BACKGROUND_WAIT_S = 0.2
    with pause.run() as allowed:
        assert allowed
        with pytest.raises(BackupError, match="background task"):
            gate.__enter__()
    assert not gate.active and not pause.held
    with gate:  # nothing left half-closed
        assert pause.held


def test_every_background_task_of_a_server_shares_the_restore_gates_pause(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    ops = build_operations(Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}"), engine)
    assert {t.name for t in ops.tasks} >= {"search-index", "compaction", "webhooks"}
    assert all(t.pause is ops.restore_gate.background for t in ops.tasks)
    engine.dispose()
