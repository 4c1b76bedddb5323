"""Wire messages of ``/v1/attachments`` (part of protocol version :data:`PROTOCOL_VERSION`).

Attachments (photos, files, signatures) travel beside the records: a device registers an
attachment's metadata (:class:`RegisterAttachment`), sends the bytes in chunks (raw
``application/octet-stream`` bodies, chunk ``i`` = bytes ``[i*chunk_size,
(i+1)*chunk_size)``), then asks the server to complete it; every answer describes the
attachment as the server holds it (:class:`AttachmentOut`). ``docs/attachments.md``
walks through the exchange.

Like the sync messages: the request is strict (an unknown field is refused), the
answers are read tolerantly (unknown fields ignored).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .versions import PROTOCOL_VERSION

__all__ = [
    "PROTOCOL_VERSION",
    "AttachmentLimits",
    "AttachmentList",
    "AttachmentOut",
    "ChunkReceived",
    "CompleteAttachment",
    "GeoLocation",
    "RegisterAttachment",
]

_ID = r"^[A-Za-z0-9_\-.:]{1,64}$"
_UPLOAD_ID = r"^[A-Za-z0-9_\-.]{1,64}$"


class GeoLocation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    accuracy_m: float | None = Field(default=None, ge=0)


class RegisterAttachment(BaseModel):
    """What a device announces about an attachment before (or while) sending its bytes."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=_UPLOAD_ID)
    collection: str = Field(min_length=1, max_length=64)
    record_id: str = Field(pattern=_ID)
    kind: Literal["photo", "file", "signature"]
    mime: str = Field(min_length=3, max_length=128, pattern=r"^[\w.+-]+/[\w.+-]+$")
    name: str | None = Field(default=None, max_length=255)
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    chunk_size: int = Field(ge=1)
    captured_at: str | None = Field(default=None, max_length=40)
    location: GeoLocation | None = None


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore")


class AttachmentOut(_Answer):
    """An attachment's metadata and upload state as the server knows it."""

    id: str
    collection: str
    record_id: str
    kind: str
    mime: str
    name: str | None
    size: int
    sha256: str
    chunk_size: int
    chunk_count: int
    captured_at: str | None
    location: GeoLocation | None
    uploaded_by: str
    #: ``pending`` (registered, bytes incomplete) or ``complete`` (stored and verified).
    status: Literal["pending", "complete"]
    #: Chunks the server holds (only while pending; ``[]`` once complete).
    received_chunks: list[int] = Field(default_factory=list)
    received_bytes: int
    created_at_ms: int
    completed_at_ms: int | None
    #: Set while ``pending`` when the server already holds this content: complete the
    #: attachment without uploading by sending the possession proof (see
    #: :mod:`sync_protocol.possession`); ``null`` means "upload the chunks".
    proof_nonce: str | None = None


class CompleteAttachment(BaseModel):
    """Optional body of ``POST …/complete``: the possession proof, instead of chunks."""

    model_config = ConfigDict(extra="forbid", strict=True)

    proof: str = Field(
        pattern=r"^[0-9a-fA-F]{64}$",
        description="HMAC-SHA256 keyed with `proof_nonce` (hex) over the whole content, hex.",
    )


class AttachmentList(_Answer):
    attachments: list[AttachmentOut]


class ChunkReceived(_Answer):
    id: str
    index: int
    received_chunks: int
    chunk_count: int


class AttachmentLimits(_Answer):
    max_bytes: int
    min_chunk_bytes: int
    max_chunk_bytes: int
    thumbnails: bool
    max_thumbnail_px: int
