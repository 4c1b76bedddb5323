"""Value objects of the attachment API."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class AttachmentState(StrEnum):
    """Where an attachment is, as the app shows it.

    ``queued`` (bytes on the device, the server has not heard of it) → ``uploading``
    (metadata registered, chunks on their way) → ``complete`` (the server holds the
    whole file and verified its SHA-256). ``failed``: the server refused it for good
    (``error`` says why; :meth:`Attachments.retry` queues it again). ``remote``: known
    from the server (another device's photo); bytes come down on demand.
    """

    QUEUED = "queued"
    UPLOADING = "uploading"
    COMPLETE = "complete"
    FAILED = "failed"
    REMOTE = "remote"


KINDS = ("photo", "file", "signature")


@dataclass(frozen=True, slots=True)
class AttachmentInfo:
    id: str
    collection: str
    record_id: str
    kind: str
    mime: str
    size: int
    sha256: str
    state: AttachmentState
    #: Bytes the server has acknowledged (== size once complete).
    uploaded_bytes: int
    #: Whether the (encrypted) bytes are on this device.
    local: bool
    name: str | None = None
    captured_at: str | None = None
    location: dict[str, float] | None = None
    #: The server's view when last heard: ``pending`` / ``complete`` / ``None`` (unknown).
    server_status: str | None = None
    error: dict[str, Any] | None = None
    created_at: float = 0.0

    @property
    def progress(self) -> float:
        """0.0 … 1.0 of the bytes uploaded."""
        return 1.0 if self.size == 0 else min(1.0, self.uploaded_bytes / self.size)


@dataclass(frozen=True, slots=True)
class AttachmentChanged:
    """Published on the store's event bus when an attachment's state or progress moves."""

    id: str
    record_id: str
    state: AttachmentState
    uploaded_bytes: int
    size: int


@dataclass(slots=True)
class UploadReport:
    registered: int = 0
    completed: int = 0
    deduplicated: int = 0
    failed: int = 0
    chunks_sent: int = 0
    bytes_sent: int = 0
    retries: int = 0
    #: The run stopped because the server could not be reached (resume later).
    interrupted: bool = False
    errors: list[str] = field(default_factory=list)
