"""A thread that uploads pending attachments, beside (never inside) the record sync.

Same shape as :class:`client_sdk.BackgroundSync`: it runs every ``interval_s`` and when
:meth:`trigger` asks (after :meth:`Attachments.add`, when the network comes back).
Being a separate thread is the point: a 20 MB video on a weak signal keeps this thread
busy for minutes while ``BackgroundSync`` goes on pushing and pulling records.
"""

from __future__ import annotations

from .._background import PeriodicRunner
from ._models import UploadReport
from ._upload import AttachmentUploader


class BackgroundUploads(PeriodicRunner[UploadReport]):
    """Uploads pending attachments every ``interval_s`` and on :meth:`trigger`."""

    thread_name = "fieldsync-uploads"
    what = "background uploads"

    def __init__(self, uploader: AttachmentUploader, interval_s: float = 30.0) -> None:
        super().__init__(interval_s)
        self.uploader = uploader

    def _work(self) -> UploadReport:
        return self.uploader.upload_pending()

    def _store_closed(self) -> bool:
        return self.uploader.attachments.store.closed
