"""Request and response bodies of ``/v1/attachments``: the protocol's own models.

They live in :mod:`sync_protocol.attachments` (one definition for the server and the
SDK); this module keeps the server's imports short.
"""

from sync_protocol.attachments import (
    AttachmentLimits,
    AttachmentList,
    AttachmentOut,
    ChunkReceived,
    CompleteAttachment,
    GeoLocation,
    RegisterAttachment,
)

__all__ = [
    "AttachmentLimits",
    "AttachmentList",
    "AttachmentOut",
    "ChunkReceived",
    "CompleteAttachment",
    "GeoLocation",
    "RegisterAttachment",
]
