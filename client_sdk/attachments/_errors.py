"""Errors of the attachment API (all are :class:`client_sdk.StoreError` or
:class:`client_sdk.SyncError` subclasses, so existing handlers keep working)::

    StoreError
    └── AttachmentError             an attachment cannot do what was asked
        ├── AttachmentTooLarge      over the size limit (checked before going online)
        ├── AttachmentNotFound      no such attachment on this device (also a KeyError)
        └── AttachmentNotLocal      the bytes are not on this device: download them
"""

from __future__ import annotations

from .._errors import StoreError


class AttachmentError(StoreError):
    """An attachment operation failed."""


class AttachmentTooLarge(AttachmentError):
    """The file is larger than the configured limit; nothing was stored."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"the file is {size} bytes; attachments are limited to {limit} bytes")
        self.size = size
        self.limit = limit


class AttachmentNotFound(AttachmentError, KeyError):
    """No attachment with that id on this device."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "attachment not found"


class AttachmentNotLocal(AttachmentError):
    """The attachment's bytes are only on the server (fetch them with the downloader)."""
