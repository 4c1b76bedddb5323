"""The attachment rules: registration, chunks, completion, listing, reading — scope-checked.

**Scope.** An attachment is visible to whoever may see the record it belongs to — the
record's ``owner_id`` judged by :meth:`server.accounts.Principal.sees_owner`, the very
rule pulls use. The record and its photos travel independently, so the server may hear
of a photo before the record itself arrives: until then the uploader stands in for the
owner (the uploader, their manager and admins see it). A record that exists and is out
of the caller's scope answers ``403 forbidden`` for every operation. Only the user who
registered an attachment may send its chunks.

**Deduplication.** Blobs are named by SHA-256 and stored once. A registration whose
digest (and size) is already stored is *not* linked to it at once — knowing a hash is
not owning the file: it answers ``pending`` with a ``proof_nonce``, and the device
completes by sending ``HMAC-SHA256(nonce, content)`` (:mod:`sync_protocol.possession`),
which takes the bytes to compute; a device without them uploads the chunks.

**Completion** happens when the device asks for it after its last chunk (``POST
…/complete``): the staged chunks are hashed and the blob is published only if the
digest matches, so ``complete`` always means *whole and verified*.
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sync_protocol import ErrorCode, ProtocolError, SchemaRegistry
from sync_protocol.possession import proof_matches

from ..accounts import Principal
from ..errors import Forbidden, NotFound
from ..models import Record
from .messages import AttachmentLimits, AttachmentOut, GeoLocation, RegisterAttachment
from .models import COMPLETE, PENDING, Attachment
from .settings import AttachmentSettings
from .storage import BlobStorage, DigestMismatch, MissingChunks
from .thumbnails import ThumbnailMaker, pillow_available

#: Collections an attachment cannot hang off (system collections).
_SYSTEM_PREFIX = "_"


class PayloadTooLarge(ProtocolError):
    code = ErrorCode.PAYLOAD_TOO_LARGE


class AttachmentConflict(ProtocolError):
    code = ErrorCode.CONFLICT


class InvalidContent(ProtocolError):
    code = ErrorCode.VALIDATION_FAILED


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def chunk_count(size: int, chunk_size: int) -> int:
    return max(1, math.ceil(size / chunk_size))


def expected_chunk_length(size: int, chunk_size: int, index: int) -> int:
    """Every chunk is ``chunk_size`` long but the last, which holds the rest."""
    count = chunk_count(size, chunk_size)
    if index < count - 1:
        return chunk_size
    return size - chunk_size * (count - 1)


@dataclass(frozen=True, slots=True)
class _Owner:
    """Whether the record is known to the server, and who owns it."""

    known: bool
    owner_id: str | None


@dataclass(slots=True)
class AttachmentService:
    """One per app: the settings, the blob storage and the thumbnail maker."""

    settings: AttachmentSettings
    storage: BlobStorage
    schema: SchemaRegistry
    thumbnails: ThumbnailMaker
    _complete_lock: threading.Lock = field(default_factory=threading.Lock)

    # -- scope -----------------------------------------------------------------------------
    def _owner(self, session: Session, collection: str, record_id: str) -> _Owner:
        row = session.execute(
            select(Record.owner_id).where(
                Record.collection == collection, Record.record_id == record_id
            )
        ).first()
        return _Owner(True, row[0]) if row is not None else _Owner(False, None)

    def _visible(self, principal: Principal, row: Attachment, owner: _Owner) -> bool:
        return principal.sees_owner(owner.owner_id if owner.known else row.user_id)

    def _load(self, session: Session, principal: Principal, attachment_id: str) -> Attachment:
        row = session.get(Attachment, attachment_id)
        if row is None:
            raise NotFound("no such attachment")
        if not self._visible(principal, row, self._owner(session, row.collection, row.record_id)):
            raise Forbidden("the attachment's record is outside your scope")
        return row

    # -- views -----------------------------------------------------------------------------
    def limits(self) -> AttachmentLimits:
        s = self.settings
        return AttachmentLimits(
            max_bytes=s.max_bytes,
            min_chunk_bytes=s.min_chunk_bytes,
            max_chunk_bytes=s.max_chunk_bytes,
            thumbnails=pillow_available(),
            max_thumbnail_px=s.max_thumbnail_px,
        )

    def describe(self, row: Attachment) -> AttachmentOut:
        count = chunk_count(row.size, row.chunk_size)
        if row.status == COMPLETE:
            received: list[int] = []
            received_bytes = row.size
        else:
            staged = self.storage.staged_chunks(row.id)
            received = sorted(
                i
                for i, n in staged.items()
                if i < count and n == expected_chunk_length(row.size, row.chunk_size, i)
            )
            received_bytes = sum(staged[i] for i in received)
        return AttachmentOut(
            id=row.id,
            collection=row.collection,
            record_id=row.record_id,
            kind=row.kind,
            mime=row.mime,
            name=row.name,
            size=row.size,
            sha256=row.sha256,
            chunk_size=row.chunk_size,
            chunk_count=count,
            captured_at=row.captured_at,
            location=GeoLocation.model_validate(json.loads(row.location)) if row.location else None,
            uploaded_by=row.user_id,
            status=PENDING if row.status != COMPLETE else COMPLETE,
            received_chunks=received,
            received_bytes=received_bytes,
            created_at_ms=row.created_at_ms,
            completed_at_ms=row.completed_at_ms,
            proof_nonce=row.proof_nonce if row.status != COMPLETE else None,
        )

    # -- registration ------------------------------------------------------------------------
    def register(
        self,
        session: Session,
        principal: Principal,
        device_id: str | None,
        body: RegisterAttachment,
    ) -> tuple[AttachmentOut, bool]:
        """Record the metadata; returns the attachment and whether it was new.

        Idempotent: registering the same id with the same content again answers the
        current state (a device that lost the first answer simply asks again).
        """
        s = self.settings
        if body.collection.startswith(_SYSTEM_PREFIX) or body.collection not in self.schema:
            raise ProtocolError(
                f"unknown collection {body.collection!r}", code=ErrorCode.UNKNOWN_COLLECTION
            )
        if body.size > s.max_bytes:
            raise PayloadTooLarge(
                f"attachments are limited to {s.max_bytes} bytes",
                details={"max_bytes": s.max_bytes, "size": body.size},
            )
        if not s.min_chunk_bytes <= body.chunk_size <= s.max_chunk_bytes:
            raise InvalidContent(
                f"chunk_size must be between {s.min_chunk_bytes} and {s.max_chunk_bytes}",
                details={
                    "min_chunk_bytes": s.min_chunk_bytes,
                    "max_chunk_bytes": s.max_chunk_bytes,
                },
            )
        owner = self._owner(session, body.collection, body.record_id)
        if owner.known and not principal.sees_owner(owner.owner_id):
            raise Forbidden("the record is outside your scope")
        existing = session.get(Attachment, body.id)
        if existing is not None:
            return self._same_registration(principal, existing, body), False
        # Knowing a file's SHA-256 is not owning the file: held content is never linked
        # at registration. The device gets a nonce and completes with the possession
        # proof (HMAC over the bytes, sync_protocol.possession) or uploads the chunks.
        blob_size = self.storage.size(body.sha256)
        known = blob_size is not None and blob_size == body.size
        stamp = now_ms()
        row = Attachment(
            id=body.id,
            collection=body.collection,
            record_id=body.record_id,
            user_id=principal.user_id,
            device_id=device_id,
            kind=body.kind,
            mime=body.mime,
            name=body.name,
            size=body.size,
            sha256=body.sha256,
            chunk_size=body.chunk_size,
            captured_at=body.captured_at,
            location=body.location.model_dump_json(exclude_none=True) if body.location else None,
            status=PENDING,
            created_at_ms=stamp,
            completed_at_ms=None,
            proof_nonce=secrets.token_hex(32) if known else None,
        )
        session.add(row)
        try:
            session.commit()
        except IntegrityError:  # the same id registered concurrently (a retried request)
            session.rollback()
            again = session.get(Attachment, body.id)
            if again is None:
                raise
            return self._same_registration(principal, again, body), False
        return self.describe(row), True

    def _same_registration(
        self, principal: Principal, row: Attachment, body: RegisterAttachment
    ) -> AttachmentOut:
        same = (
            row.user_id == principal.user_id
            and row.sha256 == body.sha256
            and row.size == body.size
            and row.collection == body.collection
            and row.record_id == body.record_id
            and row.chunk_size == body.chunk_size
        )
        if not same:
            raise AttachmentConflict(
                "an attachment with this id and different content exists",
                details={"id": row.id},
            )
        return self.describe(row)

    # -- chunks ------------------------------------------------------------------------------
    def put_chunk(
        self,
        session: Session,
        principal: Principal,
        attachment_id: str,
        index: int,
        data: bytes,
        chunk_sha256: str | None,
    ) -> tuple[Attachment, int]:
        """Stage one chunk (a re-sent chunk replaces the old copy); returns the row and
        how many chunks are now held."""
        row = self._uploader_row(session, principal, attachment_id)
        count = chunk_count(row.size, row.chunk_size)
        if row.status == COMPLETE:
            return row, count
        if not 0 <= index < count:
            raise InvalidContent(
                f"chunk index must be in 0..{count - 1}", details={"chunk_count": count}
            )
        expected = expected_chunk_length(row.size, row.chunk_size, index)
        if len(data) > expected:
            raise PayloadTooLarge(
                f"chunk {index} must be {expected} bytes",
                details={"expected": expected, "got": len(data)},
            )
        if len(data) != expected:
            raise InvalidContent(
                f"chunk {index} must be {expected} bytes (got {len(data)}): resend it",
                details={"expected": expected, "got": len(data)},
            )
        if chunk_sha256 is not None and hashlib.sha256(data).hexdigest() != chunk_sha256.lower():
            raise InvalidContent(
                f"chunk {index} does not match its X-Chunk-SHA256: resend it",
                details={"index": index},
            )
        self.storage.stage_chunk(row.id, index, data)
        return row, len(self.storage.staged_chunks(row.id))

    def _uploader_row(
        self, session: Session, principal: Principal, attachment_id: str
    ) -> Attachment:
        row = self._load(session, principal, attachment_id)
        if row.user_id != principal.user_id:
            raise Forbidden("only the user who registered an attachment uploads its bytes")
        return row

    def complete(
        self,
        session: Session,
        principal: Principal,
        attachment_id: str,
        proof: str | None = None,
    ) -> AttachmentOut:
        """Verify and publish the staged chunks — or, for content the server already
        holds, check the possession ``proof`` instead; idempotent once complete.

        Completion needs the bytes: every chunk staged and matching the SHA-256, or a
        proof computed from them. An existing blob of the same digest is never a reason
        to complete by itself (that would hand anyone who knows a hash the file)."""
        row = self._uploader_row(session, principal, attachment_id)
        if row.status == COMPLETE:
            return self.describe(row)
        count = chunk_count(row.size, row.chunk_size)
        with self._complete_lock:
            session.refresh(row)  # a concurrent request of this upload may have finished
            if row.status == COMPLETE:
                return self.describe(row)
            if proof is not None:
                self._check_proof(row, proof)
                self.storage.discard_staged(row.id)
            else:
                try:
                    self.storage.commit_staged(row.id, count, row.sha256)
                except MissingChunks as exc:
                    raise AttachmentConflict(
                        f"{len(exc.missing)} chunk(s) still missing",
                        details={"missing_chunks": exc.missing[:1000]},
                    ) from None
                except DigestMismatch as exc:
                    raise InvalidContent(
                        "the uploaded bytes do not match the announced SHA-256; "
                        "the chunks were discarded: upload again",
                        details={"expected": exc.expected, "actual": exc.actual},
                    ) from None
            row.status = COMPLETE
            row.completed_at_ms = now_ms()
            row.proof_nonce = None
            session.commit()
        return self.describe(row)

    def _check_proof(self, row: Attachment, proof: str) -> None:
        """The proof of possession must be HMAC(row.proof_nonce, the held blob)."""
        if row.proof_nonce is None or self.storage.size(row.sha256) != row.size:
            raise InvalidContent(
                "no possession proof is expected for this attachment: upload its chunks",
                details={"field": "proof"},
            )
        if not proof_matches(row.proof_nonce, self.storage.stream(row.sha256), proof):
            raise InvalidContent(
                "the possession proof does not match the content: upload the chunks",
                details={"field": "proof"},
            )

    # -- reading -------------------------------------------------------------------------------
    def get(self, session: Session, principal: Principal, attachment_id: str) -> AttachmentOut:
        return self.describe(self._load(session, principal, attachment_id))

    def list_for_record(
        self,
        session: Session,
        principal: Principal,
        record_id: str,
        collection: str | None = None,
    ) -> list[AttachmentOut]:
        """The record's attachments, oldest first; 403 if the record is out of scope."""
        query = select(Attachment).where(Attachment.record_id == record_id)
        if collection is not None:
            query = query.where(Attachment.collection == collection)
        rows: Sequence[Attachment] = session.scalars(
            query.order_by(Attachment.created_at_ms, Attachment.id)
        ).all()
        owners: dict[str, _Owner] = {}
        collections = {collection} if collection is not None else {r.collection for r in rows}
        for name in collections:
            owners[name] = self._owner(session, name, record_id)
            if owners[name].known and not principal.sees_owner(owners[name].owner_id):
                raise Forbidden("the record is outside your scope")
        return [self.describe(r) for r in rows if self._visible(principal, r, owners[r.collection])]

    def content(
        self, session: Session, principal: Principal, attachment_id: str
    ) -> tuple[Attachment, Iterator[bytes]]:
        row = self._load(session, principal, attachment_id)
        if row.status != COMPLETE:
            raise AttachmentConflict(
                "the attachment is still uploading", details={"status": row.status}
            )
        return row, self.storage.stream(row.sha256)

    def thumbnail(
        self, session: Session, principal: Principal, attachment_id: str, size: int
    ) -> bytes:
        row = self._load(session, principal, attachment_id)
        if row.status != COMPLETE:
            raise AttachmentConflict(
                "the attachment is still uploading", details={"status": row.status}
            )
        if not (row.mime.startswith("image/") or row.kind in ("photo", "signature")):
            raise NotFound("only images have thumbnails")
        size = max(16, min(size, self.settings.max_thumbnail_px))
        return self.thumbnails.make(row.sha256, size, lambda: self.storage.get(row.sha256))
