"""Requests to ``/v1/attachments`` for the signed-in client, through the SDK's one loop.

No second HTTP stack: the uploader and downloader send through the sync client's
:class:`~client_sdk.Transport` (bytes bodies for chunks, JSON for metadata) with its
session, so retries, token refresh and a revoked device are handled exactly as for
sync (:class:`client_sdk._runner.Runner`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from sync_protocol.attachments import AttachmentList, AttachmentOut

from .._errors import ServerError
from .._runner import Request, Runner
from .._sync import SyncClient
from .._transports import Transport, TransportResponse


class AttachmentApi:
    def __init__(
        self,
        client: SyncClient,
        transport: Transport | None = None,
        *,
        max_attempts: int | None = None,
    ) -> None:
        self.client = client
        self._own = transport is not None
        self.runner = Runner(
            client._core,
            transport or client.transport,
            client.config,
            client._session,
            max_attempts=max_attempts,
        )

    @property
    def retries(self) -> int:
        return self.runner.retries

    def call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        ok: tuple[int, ...] = (),
    ) -> TransportResponse:
        """One request; 2xx and statuses in ``ok`` are returned, the rest raise the
        SDK's typed errors (``ServerError`` with the code, ``AuthError``,
        ``DeviceRevoked``; ``NetworkError`` once the retries are spent)."""
        request = Request(
            method,
            path,
            body=json_body,
            content=content,
            headers=dict(headers) if headers else None,
            params=dict(params) if params else None,
        )
        return self.runner.call(request, ok=ok)

    def attachment(self, response: TransportResponse) -> AttachmentOut:
        """The ``AttachmentOut`` of an answer (read tolerantly: unknown fields ignored)."""
        try:
            return AttachmentOut.model_validate_json(response.content)
        except ValidationError as exc:
            raise ServerError(
                f"not a valid attachment answer ({exc.error_count()} errors)",
                code="internal_error",
                status=response.status,
            ) from None

    def attachments(self, response: TransportResponse) -> list[AttachmentOut]:
        try:
            return AttachmentList.model_validate_json(response.content).attachments
        except ValidationError as exc:
            raise ServerError(
                f"not a valid attachment list ({exc.error_count()} errors)",
                code="internal_error",
                status=response.status,
            ) from None

    def close(self) -> None:
        if self._own:
            self.runner.transport.close()
