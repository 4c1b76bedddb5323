"""Photos, files and signatures attached to records — captured offline, stored encrypted,
uploaded in resumable chunks, downloaded on demand. See ``docs/attachments.md``::

    attachments = Attachments(store)
    photo = attachments.add("activities", visit.id, "/sdcard/DCIM/shelf.jpg",
                            kind="photo", mime="image/jpeg",
                            location={"lat": 31.23, "lon": 121.47})
    uploader = AttachmentUploader(attachments, sync_client)
    uploader.upload_pending()              # independent of sync_client.sync()
    attachments.status(photo.id).state     # queued → uploading → complete
"""

from ._attachments import DEFAULT_CHUNK_BYTES, DEFAULT_MAX_BYTES, Attachments
from ._background import BackgroundUploads
from ._download import AttachmentDownloader
from ._errors import AttachmentError, AttachmentNotFound, AttachmentNotLocal, AttachmentTooLarge
from ._models import AttachmentChanged, AttachmentInfo, AttachmentState, UploadReport
from ._upload import AttachmentUploader

__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "DEFAULT_MAX_BYTES",
    "AttachmentChanged",
    "AttachmentDownloader",
    "AttachmentError",
    "AttachmentInfo",
    "AttachmentNotFound",
    "AttachmentNotLocal",
    "AttachmentState",
    "AttachmentTooLarge",
    "AttachmentUploader",
    "Attachments",
    "BackgroundUploads",
    "UploadReport",
]
