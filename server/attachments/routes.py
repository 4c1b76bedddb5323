"""``/v1/attachments``: register, upload chunks, complete, list, download, thumbnail.

Chunk bodies are raw bytes (``application/octet-stream``), not JSON: base64 would add a
third to every photo on a metered connection. Everything else is JSON, and every error
has the usual ``{"error": {code, message, details}}`` shape.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.requests import ClientDisconnect

from sync_protocol.attachments import CompleteAttachment

from ..deps import CurrentAuth, SessionDep
from ..openapi import error_responses
from .messages import (
    AttachmentLimits,
    AttachmentList,
    AttachmentOut,
    ChunkReceived,
    RegisterAttachment,
)
from .service import AttachmentService, InvalidContent, PayloadTooLarge, chunk_count
from .thumbnails import THUMBNAIL_MIME

router = APIRouter(prefix="/v1/attachments", tags=["attachments"])

AttachmentId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_\-.]{1,64}$")]


def get_service(request: Request) -> AttachmentService:
    service: AttachmentService = request.app.state.attachments
    return service


ServiceDep = Annotated[AttachmentService, Depends(get_service)]


async def chunk_body(request: Request, service: ServiceDep) -> bytes:
    """The raw request body, refused with 413 as soon as it outgrows the largest chunk."""
    limit = service.settings.max_chunk_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(
            f"a chunk is at most {limit} bytes", details={"max_chunk_bytes": limit}
        )
    parts: list[bytes] = []
    received = 0
    try:
        async for piece in request.stream():
            received += len(piece)
            if received > limit:
                raise PayloadTooLarge(
                    f"a chunk is at most {limit} bytes", details={"max_chunk_bytes": limit}
                )
            parts.append(piece)
    except ClientDisconnect:
        # The phone lost its signal mid-chunk: nothing is staged, it will resend.
        raise InvalidContent("the connection closed before the chunk arrived") from None
    return b"".join(parts)


ChunkBody = Annotated[bytes, Depends(chunk_body)]


@router.get("/limits", response_model=AttachmentLimits)
def limits(service: ServiceDep) -> AttachmentLimits:
    """Size limits, allowed chunk sizes and whether thumbnails are available."""
    return service.limits()


@router.post("", response_model=AttachmentOut, responses=error_responses(409, 413))
def register(
    body: RegisterAttachment,
    auth: CurrentAuth,
    session: SessionDep,
    service: ServiceDep,
    response: Response,
) -> AttachmentOut:
    """Register an attachment's metadata (idempotent). ``201`` when new, ``200`` when
    already known. ``status`` is ``complete`` at once when the server already holds the
    same content (nothing needs sending); ``received_chunks`` says what it has."""
    out, created = service.register(session, auth.principal, auth.device.id, body)
    response.status_code = 201 if created else 200
    return out


@router.get("", response_model=AttachmentList)
def list_attachments(
    auth: CurrentAuth,
    session: SessionDep,
    service: ServiceDep,
    record_id: Annotated[str, Query(min_length=1, max_length=64)],
    collection: Annotated[str | None, Query(max_length=64)] = None,
) -> AttachmentList:
    """A record's attachments with their upload status (``403`` outside your scope)."""
    return AttachmentList(
        attachments=service.list_for_record(session, auth.principal, record_id, collection)
    )


@router.get("/{attachment_id}", response_model=AttachmentOut, responses=error_responses(404))
def get_attachment(
    attachment_id: AttachmentId, auth: CurrentAuth, session: SessionDep, service: ServiceDep
) -> AttachmentOut:
    """Metadata and upload state; while pending, ``received_chunks`` lists what arrived."""
    return service.get(session, auth.principal, attachment_id)


@router.put(
    "/{attachment_id}/chunks/{index}",
    response_model=ChunkReceived,
    responses=error_responses(404, 409, 413),
)
def put_chunk(
    attachment_id: AttachmentId,
    index: Annotated[int, Path(ge=0, le=1_000_000)],
    data: ChunkBody,
    auth: CurrentAuth,
    session: SessionDep,
    service: ServiceDep,
    chunk_sha256: Annotated[
        str | None, Header(alias="X-Chunk-SHA256", pattern=r"^[0-9a-fA-F]{64}$")
    ] = None,
) -> ChunkReceived:
    """Store chunk ``index`` (raw body). Re-sending a chunk is harmless."""
    row, held = service.put_chunk(session, auth.principal, attachment_id, index, data, chunk_sha256)
    return ChunkReceived(
        id=row.id,
        index=index,
        received_chunks=held,
        chunk_count=chunk_count(row.size, row.chunk_size),
    )


@router.post(
    "/{attachment_id}/complete", response_model=AttachmentOut, responses=error_responses(404, 409)
)
def complete(
    attachment_id: AttachmentId,
    auth: CurrentAuth,
    session: SessionDep,
    service: ServiceDep,
    body: CompleteAttachment | None = None,
) -> AttachmentOut:
    """Join and verify the chunks (SHA-256 of the whole file). ``409`` with
    ``details.missing_chunks`` if some are missing; ``422`` if the digest differs.

    When the registration answered a ``proof_nonce`` (the server already holds this
    content), the body may carry the possession proof instead of uploading the chunks:
    ``{"proof": HMAC-SHA256(nonce, content)}``; a wrong proof is ``422``."""
    proof = body.proof if body is not None else None
    return service.complete(session, auth.principal, attachment_id, proof)


@router.get("/{attachment_id}/content", responses=error_responses(404, 409))
def content(
    attachment_id: AttachmentId, auth: CurrentAuth, session: SessionDep, service: ServiceDep
) -> StreamingResponse:
    """The whole file (``409`` while still uploading)."""
    row, pieces = service.content(session, auth.principal, attachment_id)
    headers = {
        "Content-Length": str(row.size),
        "ETag": f'"{row.sha256}"',
        "X-Content-SHA256": row.sha256,
        "Cache-Control": "private, max-age=31536000, immutable",
    }
    if _already_compressed(row.mime):
        headers["Content-Encoding"] = "identity"  # tells GZipMiddleware to leave it alone
    return StreamingResponse(pieces, media_type=row.mime, headers=headers)


@router.get("/{attachment_id}/thumbnail", responses=error_responses(404, 409))
def thumbnail(
    attachment_id: AttachmentId,
    auth: CurrentAuth,
    session: SessionDep,
    service: ServiceDep,
    size: Annotated[int, Query(ge=16, le=4096)] = 256,
) -> Response:
    """A JPEG of the photo whose longer edge is at most ``size`` pixels."""
    data = service.thumbnail(session, auth.principal, attachment_id, size)
    return Response(
        data,
        media_type=THUMBNAIL_MIME,
        headers={
            "Cache-Control": "private, max-age=31536000, immutable",
            "Content-Encoding": "identity",
        },
    )


_COMPRESSED_TYPES = ("image/", "video/", "audio/")
_COMPRESSED_APPS = ("application/pdf", "application/zip", "application/gzip")


def _already_compressed(mime: str) -> bool:
    """Photos, videos and archives do not shrink: gzipping them only burns server CPU."""
    mime = mime.lower()
    return (mime.startswith(_COMPRESSED_TYPES) and "svg" not in mime) or mime.startswith(
        _COMPRESSED_APPS
    )
