"""The upload driver: metadata first, then missing chunks, then verification.

For each attachment still to upload:

1. **Register** its metadata (``POST /v1/attachments``, idempotent). The server answers
   with its view: ``pending`` with the chunks it has — and a ``proof_nonce`` when it
   already holds the same content (another device or user sent it): the device then
   completes with a possession proof (an HMAC over the bytes) and re-sends nothing.
2. **Send the missing chunks** (``PUT …/chunks/{i}``, raw bytes, each with its own
   SHA-256 header). A dropped connection costs at most the chunk in flight: the next
   run asks the server what it holds and sends only the rest.
3. **Complete** (``POST …/complete``): the server hashes the whole file and publishes it
   only if it matches, so ``complete`` on the device means whole and verified.

The uploader never touches records or the outbox and takes no lock the record sync
holds (except for a token refresh): ``SyncClient.sync()`` and ``upload_pending()`` run
independently, typically on two threads. A photo attached to a visit therefore never
holds the visit back, and the manager sees the visit at once with its photo ``pending``.

Requests go through the SDK's one request loop (:class:`client_sdk._runner.Runner`) with
the sync client's transport and session: the same retries, the same token refresh, the
same handling of a revoked device.
"""

from __future__ import annotations

import hashlib
import logging

from pydantic import ValidationError

from sync_protocol.attachments import AttachmentOut, CompleteAttachment, RegisterAttachment
from sync_protocol.possession import possession_proof

from .._errors import AuthError, NetworkError, ServerError
from .._store import Store
from .._sync import SyncClient
from .._transports import Transport
from ._api import AttachmentApi
from ._attachments import Attachments, chunk_count
from ._models import AttachmentInfo, AttachmentState, UploadReport

log = logging.getLogger("client_sdk")

#: Server refusals that will not go away by retrying: the attachment is marked failed.
_PERMANENT = frozenset(
    {"payload_too_large", "forbidden", "unknown_collection", "validation_failed", "conflict"}
)


class AttachmentUploader:
    """Uploads the pending attachments of ``store`` for the user ``client`` signed in as.

    ``AttachmentUploader(store_or_attachments, client)`` shares the sync client's
    transport (its connection pool) and tokens; pass ``transport=`` (any
    :class:`~client_sdk.Transport`) to go elsewhere — a proxy, a test client.
    ``max_attempts`` bounds the retries of one request before the run stops with
    ``report.interrupted`` (default: the sync client's setting).
    """

    def __init__(
        self,
        attachments: Attachments | Store,
        client: SyncClient,
        transport: Transport | None = None,
        *,
        max_attempts: int | None = None,
    ) -> None:
        self.attachments = (
            attachments if isinstance(attachments, Attachments) else Attachments(attachments)
        )
        self.api = AttachmentApi(client, transport, max_attempts=max_attempts)

    # -- runs ------------------------------------------------------------------------------
    def register_pending(self, report: UploadReport | None = None) -> int:
        """Tell the server about every attachment it has not heard of (metadata only).

        Cheap and worth doing first: the manager sees the photo ``pending`` on the
        visit long before a slow link has carried its bytes. Content the server already
        holds completes right here (counted as ``deduplicated``).
        """
        report = report if report is not None else UploadReport()
        count = 0
        for info in self.attachments.pending():
            if not self.attachments.is_registered(info.id):
                try:
                    server = self._register(info)
                except AuthError:
                    raise
                except ServerError as exc:
                    if self._fail(info, exc):
                        report.failed += 1
                    report.errors.append(f"{info.id}: {exc.code}: {exc.message}")
                    continue
                count += 1
                if server.status == "complete":
                    report.deduplicated += 1
                    report.completed += 1
        return count

    def upload_pending(self, *, max_chunks: int | None = None) -> UploadReport:
        """Upload everything pending, oldest first. Stops (``interrupted``) when the
        server cannot be reached; call again later to resume. ``max_chunks`` caps the
        chunks sent in this run (to spread a big upload over several runs)."""
        report = UploadReport()
        budget = max_chunks
        try:
            report.registered = self.register_pending(report)
            for info in self.attachments.pending():
                if budget is not None and budget <= 0:
                    break
                before = report.chunks_sent
                try:
                    self._upload(info, report, budget)
                except AuthError:
                    raise
                except ServerError as exc:
                    if self._fail(info, exc):
                        report.failed += 1
                    report.errors.append(f"{info.id}: {exc.code}: {exc.message}")
                if budget is not None:
                    budget -= report.chunks_sent - before
        except NetworkError as exc:
            report.interrupted = True
            report.errors.append(exc.message)
        finally:
            report.retries = self.api.retries
        return report

    def upload(self, attachment_id: str, *, max_chunks: int | None = None) -> AttachmentInfo:
        """Upload one attachment now (raises :class:`NetworkError` when offline)."""
        report = UploadReport()
        info = self.attachments.status(attachment_id)
        if info.state in (AttachmentState.QUEUED, AttachmentState.UPLOADING):
            try:
                self._upload(info, report, max_chunks)
            except AuthError:
                raise
            except ServerError as exc:
                self._fail(info, exc)
                raise
        return self.attachments.status(attachment_id)

    # -- steps ------------------------------------------------------------------------------
    def _register(self, info: AttachmentInfo) -> AttachmentOut:
        try:
            request = RegisterAttachment(
                id=info.id,
                collection=info.collection,
                record_id=info.record_id,
                kind=info.kind,  # type: ignore[arg-type]  # checked by the model
                mime=info.mime,
                name=info.name[:255] if info.name else None,
                size=info.size,
                sha256=info.sha256,
                chunk_size=self.attachments.chunk_size_of(info.id),
                captured_at=info.captured_at,
                location=info.location,  # type: ignore[arg-type]  # checked by the model
            )
        except ValidationError as exc:  # refused before it leaves, like the server would
            raise ServerError(
                f"the attachment's metadata is not valid ({exc.error_count()} errors)",
                code="validation_failed",
            ) from None
        body = request.model_dump(mode="json", exclude_none=True)
        server = self.api.attachment(self.api.call("POST", "/v1/attachments", json_body=body))
        self._absorb(info.id, server)
        return server

    def _absorb(self, attachment_id: str, server: AttachmentOut) -> AttachmentInfo:
        done = server.status == "complete"
        return self.attachments.update(
            attachment_id,
            state=AttachmentState.COMPLETE if done else AttachmentState.UPLOADING,
            registered=True,
            uploaded_bytes=server.received_bytes,
            server_status=server.status,
            error=None,
        )

    def _upload(self, info: AttachmentInfo, report: UploadReport, budget: int | None) -> None:
        fresh = False
        if self.attachments.is_registered(info.id):
            response = self.api.call("GET", f"/v1/attachments/{info.id}", ok=(404,))
            server = None if response.status == 404 else self.api.attachment(response)
            if server is None:  # the server forgot it (restored backup): register again
                server, fresh = self._register(info), True
            else:
                self._absorb(info.id, server)
        else:
            server, fresh = self._register(info), True
            report.registered += 1
        if server.status == "complete":
            report.deduplicated += int(fresh)
            report.completed += 1
            return
        chunk_size = self.attachments.chunk_size_of(info.id)
        count = chunk_count(info.size, chunk_size)
        if server.proof_nonce and self._prove(info, server.proof_nonce, count):
            report.deduplicated += 1
            report.completed += 1
            return
        held = set(server.received_chunks)
        uploaded = server.received_bytes
        for index in range(count):
            if index in held:
                continue
            if budget is not None and report.chunks_sent >= budget:
                return
            data = self.attachments.vault.read(info.id, index)
            self.api.call(
                "PUT",
                f"/v1/attachments/{info.id}/chunks/{index}",
                content=data,
                headers={"X-Chunk-SHA256": hashlib.sha256(data).hexdigest()},
            )
            report.chunks_sent += 1
            report.bytes_sent += len(data)
            uploaded += len(data)
            self.attachments.update(info.id, uploaded_bytes=min(uploaded, info.size))
        done = self.api.call("POST", f"/v1/attachments/{info.id}/complete")
        self._absorb(info.id, self.api.attachment(done))
        report.completed += 1

    def _prove(self, info: AttachmentInfo, nonce: str, count: int) -> bool:
        """The server already holds this content: show it we hold the bytes too (an
        HMAC over them, :mod:`sync_protocol.possession`) instead of sending them. False
        when it will not take the proof: then the chunks are uploaded as usual."""
        content = (self.attachments.vault.read(info.id, index) for index in range(count))
        body = CompleteAttachment(proof=possession_proof(nonce, content))
        try:
            done = self.api.call(
                "POST", f"/v1/attachments/{info.id}/complete", json_body=body.model_dump()
            )
        except ServerError as exc:
            if exc.code not in ("validation_failed", "conflict"):
                raise
            return False
        self._absorb(info.id, self.api.attachment(done))
        return True

    def _fail(self, info: AttachmentInfo, exc: ServerError) -> bool:
        """Mark the attachment failed when the refusal is permanent; True if so."""
        if exc.code not in _PERMANENT:
            return False
        if exc.code == "validation_failed" and exc.details.get("actual"):
            # The server discarded chunks that hashed wrong: start over once more.
            self.attachments.update(info.id, uploaded_bytes=0)
            return False
        log.warning("attachment %s refused by the server: %s", info.id, exc.code)
        self.attachments.update(
            info.id,
            state=AttachmentState.FAILED,
            error={"code": exc.code, "message": exc.message, "details": exc.details},
        )
        return True

    def close(self) -> None:
        self.api.close()
