"""Periodic background work inside the server process (a daemon thread per task).

Used for what must not sit on a request: flushing the fleet-health buffer and running
compaction on a schedule. A task that raises is logged and tried again at the next
tick; :meth:`Periodic.stop` wakes the thread, waits for the current run to end and
(optionally) runs the task one last time — the final flush at shutdown.

A :class:`Pause` shared by a process's tasks lets a restore from the admin API hold
them all: :meth:`Pause.hold` waits for the runs in progress to end and no run starts
until :meth:`Pause.release` (a background run during ``pg_restore --clean`` would
deadlock with it, or write into tables being replaced).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger("fieldsync.background")


class Pause:
    """Holds background runs off while something must have the database alone."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._running = 0
        self.held = False

    @contextmanager
    def run(self) -> Iterator[bool]:
        """Yields True when a run may go ahead (counted until it ends), False if held."""
        with self._cond:
            if self.held:
                allowed = False
            else:
                allowed = True
                self._running += 1
        try:
            yield allowed
        finally:
            if allowed:
                with self._cond:
                    self._running -= 1
                    self._cond.notify_all()

    def hold(self, timeout_s: float) -> bool:
        """Stop new runs and wait for those in progress; False (and not held) on timeout."""
        with self._cond:
            self.held = True
            if self._cond.wait_for(lambda: self._running == 0, timeout_s):
                return True
            self.held = False
            return False

    def release(self) -> None:
        with self._cond:
            self.held = False


class Foreground:
    """The requests background work gives way to (pushes): how many are running and
    when the last one ended. A process's CPU-heavy background task — the search
    catch-up, whose pinyin holds the GIL — skips its turn while they come
    (:func:`yielding`) instead of taking a share of the cores from them."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._running = 0
        self._last_end = float("-inf")

    @contextmanager
    def running(self) -> Iterator[None]:
        with self._lock:
            self._running += 1
        try:
            yield
        finally:
            with self._lock:
                self._running -= 1
                self._last_end = self.clock()

    def active(self) -> bool:
        """Whether one is running now."""
        with self._lock:
            return self._running > 0

    def quiet_for(self) -> float:
        """Seconds since the last one ended (0 while one runs; infinite if none ran)."""
        with self._lock:
            if self._running:
                return 0.0
            return self.clock() - self._last_end


def yielding(
    task: Callable[[], object],
    foreground: Foreground,
    *,
    quiet_s: float,
    max_defer_s: float,
    busy: Callable[[], object] | None = None,
    quiet: Callable[[], object] | None = None,
) -> Callable[[], object]:
    """``task``, skipped while ``foreground`` has been quiet for less than ``quiet_s`` —
    but never skipped for longer than ``max_defer_s`` in a row (a sustained burst still
    leaves the task a turn that often). ``quiet_s`` 0: never skipped. ``busy``: what runs
    instead of a skipped turn (a smaller share of the work), if anything. ``quiet``:
    what runs instead of ``task`` on a turn taken because all was quiet (one that gives
    up when the foreground comes back); a turn forced by ``max_defer_s`` is ``task``."""
    deferred_since: list[float] = []

    def run() -> object:
        if quiet_s <= 0:
            return task()
        if foreground.quiet_for() < quiet_s:
            now = foreground.clock()
            if not deferred_since:
                deferred_since.append(now)
            if now - deferred_since[0] < max_defer_s:
                return busy() if busy is not None else None
            deferred_since.clear()
            return task()
        deferred_since.clear()
        return (quiet or task)()

    return run


class Periodic:
    """Run ``task`` every ``interval_s`` seconds on a daemon thread (skipping the ticks
    that fall while ``pause`` is held)."""

    def __init__(
        self,
        name: str,
        interval_s: float,
        task: Callable[[], object],
        *,
        run_at_stop: bool,
        pause: Pause | None = None,
    ) -> None:
        self.name = name
        self.interval_s = interval_s
        self.task = task
        self.run_at_stop = run_at_stop
        self.pause = pause if pause is not None else Pause()
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
        with self.pause.run() as allowed:
            if not allowed:
                return
            try:
                self.task()
            except Exception:
                log.exception(
                    "background task %s failed; it runs again at the next tick", self.name
                )

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
