"""Talking to ``/v1/attachments``: a binary-capable transport and the signed-in caller.

The SDK's :class:`client_sdk.Transport` moves JSON; chunks are raw bytes, so this
module has its own small seam, :class:`AttachmentTransport`, with an httpx
implementation that can share the :class:`HttpTransport`'s connection pool. Credentials
come from the :class:`SyncClient` the app already signed in with: the same access token,
and on a ``401`` the same refresh — taken under the sync client's lock, so an upload and
a record sync never rotate the refresh token twice (a reuse the server punishes by
revoking the device).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import Any, Protocol

import httpx

from .._errors import AuthError, DeviceRevoked, NetworkError, ServerError
from .._sync import SyncClient, SyncConfig
from .._transport import HttpTransport, Transport, TransportResponse

_RETRYABLE = frozenset({429, 500, 502, 503, 504})


class AttachmentTransport(Protocol):
    """Sends one request with a JSON or raw body; raises :class:`NetworkError` when no
    answer arrives (any HTTP answer is returned as is)."""

    def send(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str],
        json_body: Any = None,
        content: bytes | None = None,
        params: Mapping[str, str] | None = None,
    ) -> TransportResponse: ...

    def close(self) -> None: ...


class HttpAttachmentTransport:
    """httpx, on its own client (``base_url``) or a shared one (``client=``)."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        client: httpx.Client | None = None,
        timeout_s: float = 60.0,
    ) -> None:
        if client is None and base_url is None:
            raise ValueError("give a base_url or an httpx client")
        self._own = client is None
        self._client = client or httpx.Client(
            base_url=base_url or "", timeout=httpx.Timeout(timeout_s, connect=10.0)
        )

    @classmethod
    def sharing(cls, transport: Transport) -> HttpAttachmentTransport:
        """Reuse the connection pool of the sync client's :class:`HttpTransport`."""
        client = getattr(transport, "_client", None)
        if not isinstance(transport, HttpTransport) or not isinstance(client, httpx.Client):
            raise TypeError(
                "the sync client does not use an HttpTransport: pass an AttachmentTransport"
            )
        return cls(client=client)

    def send(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str],
        json_body: Any = None,
        content: bytes | None = None,
        params: Mapping[str, str] | None = None,
    ) -> TransportResponse:
        all_headers = dict(headers)
        body: bytes | None = content
        if json_body is not None:
            body = json.dumps(json_body, ensure_ascii=False).encode("utf-8")
            all_headers["Content-Type"] = "application/json"
        elif content is not None:
            all_headers["Content-Type"] = "application/octet-stream"
        try:
            response = self._client.request(
                method, path, content=body, headers=all_headers, params=params
            )
        except httpx.TransportError as exc:
            raise NetworkError(f"cannot reach the server ({type(exc).__name__})") from None
        return TransportResponse(response.status_code, response.content, dict(response.headers))

    def close(self) -> None:
        if self._own:
            self._client.close()


class AttachmentApi:
    """Authenticated, retrying requests to ``/v1/attachments`` for one signed-in client."""

    def __init__(
        self,
        client: SyncClient,
        transport: AttachmentTransport | None = None,
        *,
        max_attempts: int | None = None,
    ) -> None:
        self.client = client
        self.transport = transport or HttpAttachmentTransport.sharing(client.transport)
        self.config: SyncConfig = client.config
        self.max_attempts = max_attempts if max_attempts is not None else client.config.max_attempts
        self.retries = 0

    def _token(self) -> str:
        tokens = self.client._load_tokens()
        if not tokens:
            raise AuthError("not logged in", code="unauthorized", status=401)
        return str(tokens["access_token"])

    def _refresh(self, used: str) -> None:
        """Refresh once, unless the sync thread did it while our request was out."""
        lock = getattr(self.client, "_lock", None)
        with lock if lock is not None else contextlib.nullcontext():
            if self._token() == used:
                self.client.refresh()

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
        """One request: retried on no answer / 429 / 5xx, refreshed once on 401.

        Answers 2xx and any status in ``ok`` are returned; others raise
        :class:`ServerError` (``code`` from the body), :class:`AuthError` or
        :class:`DeviceRevoked`; exhausted retries raise :class:`NetworkError`.
        """
        attempt = 0
        refreshed = False
        while True:
            token = self._token()
            all_headers = {"Authorization": f"Bearer {token}", **(headers or {})}
            try:
                response = self.transport.send(
                    method,
                    path,
                    headers=all_headers,
                    json_body=json_body,
                    content=content,
                    params=params,
                )
            except NetworkError:
                attempt += 1
                if attempt >= self.max_attempts:
                    raise
                self.retries += 1
                self.config.sleep(self.config.backoff(attempt))
                continue
            if 200 <= response.status < 300 or response.status in ok:
                return response
            code, message, details = error_of(response)
            if response.status == 401 and not refreshed:
                self._refresh(token)
                refreshed = True
                continue
            if response.status == 401:
                raise AuthError(message, code=code, status=401, details=details)
            if code == "device_revoked":
                raise DeviceRevoked(message, code=code, status=response.status, details=details)
            if response.status in _RETRYABLE:
                attempt += 1
                if attempt < self.max_attempts:
                    self.retries += 1
                    self.config.sleep(self.config.backoff(attempt))
                    continue
            raise ServerError(message, code=code, status=response.status, details=details)

    def close(self) -> None:
        self.transport.close()


def error_of(response: TransportResponse) -> tuple[str, str, dict[str, Any]]:
    try:
        err = response.json()["error"]
        return str(err["code"]), str(err.get("message", "")), dict(err.get("details") or {})
    except (ValueError, KeyError, TypeError):
        return f"http_{response.status}", f"the server answered HTTP {response.status}", {}
