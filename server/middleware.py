"""Request-body decompression (``Content-Encoding: gzip``) with a size cap.

Phones push large batches over slow links; gzip shrinks a batch ~5x. The decompressed
size is capped by ``max_body_bytes`` so a small "zip bomb" cannot exhaust memory.
Responses are compressed by Starlette's ``GZipMiddleware``.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send


def _error(status: int, code: str, message: str) -> tuple[int, bytes]:
    body = {"error": {"code": code, "message": message, "details": {}}}
    return status, json.dumps(body).encode()


class GzipRequestMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = list(scope.get("headers", []))
        encoding = next((v for k, v in headers if k == b"content-encoding"), None)
        if encoding is None or encoding.strip().lower() != b"gzip":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = bool(message.get("more_body", False))
        try:
            inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            body = inflater.decompress(b"".join(chunks), self.max_body_bytes + 1)
            if len(body) > self.max_body_bytes or inflater.unconsumed_tail:
                status, payload = _error(
                    413, "payload_too_large", "the request body is too large once decompressed"
                )
                await _respond(send, status, payload)
                return
        except zlib.error:
            status, payload = _error(422, "validation_failed", "the body is not valid gzip")
            await _respond(send, status, payload)
            return
        new_headers = [
            (k, v) for k, v in headers if k not in (b"content-encoding", b"content-length")
        ]
        new_headers.append((b"content-length", str(len(body)).encode()))
        new_scope = dict(scope)
        new_scope["headers"] = new_headers
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(new_scope, replay, send)


async def _respond(send: Send, status: int, payload: bytes) -> None:
    headers: list[Any] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
