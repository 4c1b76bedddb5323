"""The ``attachments`` table: one row per attachment, the metadata a device registers.

The bytes are not here: they live in the blob storage under the content's SHA-256, so
many rows (two devices, two users, two records) may name one blob. A row is
``pending`` from registration until the blob with its digest exists and was verified,
then ``complete``. The row is *not* a synced record: the record it belongs to syncs
through ``/v1/sync`` on its own, and the two are joined by ``(collection, record_id)``.

Declared on :class:`server.models.Base`, so ``Base.metadata`` knows it once this module
is imported; the migration is ``server/migrations/versions/0002_attachments.py``.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..models import Base

PENDING = "pending"
COMPLETE = "complete"
KINDS = ("photo", "file", "signature")


class Attachment(Base):
    __tablename__ = "attachments"
    __table_args__ = (
        Index("ix_attachments_record", "record_id", "collection"),
        Index("ix_attachments_sha256", "sha256"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    collection: Mapped[str] = mapped_column(String(64))
    record_id: Mapped[str] = mapped_column(String(64))
    #: The user who registered it (the only one who may send its chunks).
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    device_id: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    mime: Mapped[str] = mapped_column(String(128))
    name: Mapped[str | None] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    chunk_size: Mapped[int] = mapped_column(Integer)
    #: ISO-8601 capture time as the device recorded it.
    captured_at: Mapped[str | None] = mapped_column(String(40))
    #: JSON ``{"lat", "lon", "accuracy_m"?}`` or NULL.
    location: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    completed_at_ms: Mapped[int | None] = mapped_column(BigInteger)
    #: Random key of the possession proof: content the server already holds is linked
    #: only after the device shows ``HMAC-SHA256(proof_nonce, content)``.
    proof_nonce: Mapped[str | None] = mapped_column(String(64))
