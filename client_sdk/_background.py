"""A thread that syncs every ``interval_s`` and whenever :meth:`BackgroundSync.trigger` asks.

Failures never kill the thread: they are recorded in the store's status (``last_error``,
``online``) and the next attempt comes at the next interval or trigger. After a
:class:`DeviceRevoked`, a failed login, an :class:`UpgradeRequired`, or once the store is closed or wiped (even
mid-run) the runner stops by itself.
"""

from __future__ import annotations

import logging
import threading
from typing import Generic, Self, TypeVar

from ._errors import AuthError, SDKError, UpgradeRequired
from ._status import SyncReport
from ._sync import SyncClient

log = logging.getLogger("client_sdk")

R = TypeVar("R")


class PeriodicRunner(Generic[R]):
    """A daemon thread that runs :meth:`_work` every ``interval_s`` and on :meth:`trigger`.

    Shared by :class:`BackgroundSync` and the attachments' ``BackgroundUploads``: a
    failure is recorded (``last_exception``) and never kills the thread; an
    :class:`AuthError` (signed out, revoked) or :class:`UpgradeRequired` stops it; a closed
    store stops it.
    """

    thread_name = "fieldsync-runner"
    what = "background run"

    def __init__(self, interval_s: float = 30.0) -> None:
        self.interval_s = interval_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_report: R | None = None
        self.last_exception: BaseException | None = None
        self.runs = 0

    def _work(self) -> R:
        raise NotImplementedError

    def _store_closed(self) -> bool:
        raise NotImplementedError

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=self.thread_name, daemon=True)
        self._thread.start()

    def trigger(self) -> None:
        """Run as soon as possible (after a local write, when the network comes back)."""
        self._wake.set()

    def stop(self, timeout_s: float | None = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()  # a trigger during the run below causes one more run
            self._run_once()
            self._wake.wait(self.interval_s)

    def _halt(self) -> None:
        """Stop from inside the thread: no more runs, and no waiting for the interval."""
        self._stop.set()
        self._wake.set()

    def _run_once(self) -> None:
        if self._store_closed():
            self._halt()
            return
        try:
            self.last_report = self._work()
            self.last_exception = None
        except (AuthError, UpgradeRequired) as exc:
            self.last_exception = exc
            log.warning("%s stopped: %s", self.what, exc.code)
            self._halt()
        except SDKError as exc:
            self.last_exception = exc
            log.info("%s failed: %s", self.what, type(exc).__name__)
        except Exception as exc:  # keep the thread alive; the next run may succeed
            self.last_exception = exc
            log.exception("%s crashed", self.what)
        finally:
            self.runs += 1
        if self._store_closed():  # closed or wiped while it ran: nothing more to do
            self._halt()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class BackgroundSync(PeriodicRunner[SyncReport]):
    """Syncs the store through ``client`` every ``interval_s`` and on :meth:`trigger`."""

    thread_name = "fieldsync-sync"
    what = "background sync"

    def __init__(self, client: SyncClient, interval_s: float = 30.0) -> None:
        super().__init__(interval_s)
        self.client = client

    def _work(self) -> SyncReport:
        return self.client.sync()

    def _store_closed(self) -> bool:
        return self.client.store.closed
