"""A thread that syncs every ``interval_s`` and whenever :meth:`BackgroundSync.trigger` asks.

Failures never kill the thread: they are recorded in the store's status (``last_error``,
``online``) and the next attempt comes at the next interval or trigger. After a
:class:`DeviceRevoked` (store wiped) or a failed login the runner stops by itself.
"""

from __future__ import annotations

import logging
import threading

from ._errors import AuthError, SDKError
from ._status import SyncReport
from ._sync import SyncClient

log = logging.getLogger("client_sdk")


class BackgroundSync:
    def __init__(self, client: SyncClient, interval_s: float = 30.0) -> None:
        self.client = client
        self.interval_s = interval_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_report: SyncReport | None = None
        self.last_exception: BaseException | None = None
        self.runs = 0

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="fieldsync-sync", daemon=True)
        self._thread.start()

    def trigger(self) -> None:
        """Sync as soon as possible (after a local write, when the network comes back)."""
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
            self._run_once()
            self._wake.wait(self.interval_s)
            self._wake.clear()

    def _run_once(self) -> None:
        if self.client.store.closed:
            self._stop.set()
            return
        try:
            self.last_report = self.client.sync()
            self.last_exception = None
        except AuthError as exc:
            self.last_exception = exc
            log.warning("background sync stopped: %s", exc.code)
            self._stop.set()
        except SDKError as exc:
            self.last_exception = exc
            log.info("background sync failed: %s", type(exc).__name__)
        except Exception as exc:  # keep the thread alive; the next run may succeed
            self.last_exception = exc
            log.exception("background sync crashed")
        finally:
            self.runs += 1

    def __enter__(self) -> BackgroundSync:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
