"""A thread that uploads pending attachments, beside (never inside) the record sync.

Same shape as :class:`client_sdk.BackgroundSync`: it runs every ``interval_s`` and when
:meth:`trigger` asks (after :meth:`Attachments.add`, when the network comes back).
Being a separate thread is the point: a 20 MB video on a weak signal keeps this thread
busy for minutes while ``BackgroundSync`` goes on pushing and pulling records.
"""

from __future__ import annotations

import logging
import threading

from .._errors import AuthError, SDKError
from ._models import UploadReport
from ._upload import AttachmentUploader

log = logging.getLogger("client_sdk")


class BackgroundUploads:
    def __init__(self, uploader: AttachmentUploader, interval_s: float = 30.0) -> None:
        self.uploader = uploader
        self.interval_s = interval_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_report: UploadReport | None = None
        self.last_exception: BaseException | None = None
        self.runs = 0

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="fieldsync-uploads", daemon=True)
        self._thread.start()

    def trigger(self) -> None:
        """Upload as soon as possible."""
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
            self._wake.clear()
            self._run_once()
            self._wake.wait(self.interval_s)

    def _run_once(self) -> None:
        if self.uploader.attachments.store.closed:
            self._stop.set()
            return
        try:
            self.last_report = self.uploader.upload_pending()
            self.last_exception = None
        except AuthError as exc:  # signed out or revoked: the sync runner handles it
            self.last_exception = exc
            log.warning("background uploads stopped: %s", exc.code)
            self._stop.set()
        except SDKError as exc:
            self.last_exception = exc
            log.info("background upload failed: %s", type(exc).__name__)
        except Exception as exc:  # keep the thread alive; the next run may succeed
            self.last_exception = exc
            log.exception("background upload crashed")
        finally:
            self.runs += 1

    def __enter__(self) -> BackgroundUploads:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
