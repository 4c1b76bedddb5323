"""Periodic background work inside the server process (a daemon thread per task).

Used for what must not sit on a request: flushing the fleet-health buffer and running
compaction on a schedule. A task that raises is logged and tried again at the next
tick; :meth:`Periodic.stop` wakes the thread, waits for the current run to end and
(optionally) runs the task one last time — the final flush at shutdown.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("fieldsync.background")


class Periodic:
    """Run ``task`` every ``interval_s`` seconds on a daemon thread."""

    def __init__(
        self, name: str, interval_s: float, task: Callable[[], object], *, run_at_stop: bool
    ) -> None:
        self.name = name
        self.interval_s = interval_s
        self.task = task
        self.run_at_stop = run_at_stop
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None or self.interval_s <= 0:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._loop, name=f"fieldsync-{self.name}", daemon=True
        )
        self._thread.start()

    def _run_once(self) -> None:
        try:
            self.task()
        except Exception:
            log.exception("background task %s failed; it runs again at the next tick", self.name)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._run_once()

    def stop(self, timeout_s: float = 30.0) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join(timeout_s)
        if self.run_at_stop:
            self._run_once()
