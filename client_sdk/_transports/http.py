"""HTTP with httpx: JSON bodies (gzip-compressed when large) and raw byte bodies."""

from __future__ import annotations

import gzip
import json

import httpx

from .._errors import NetworkError
from .base import TransportRequest, TransportResponse

#: JSON bodies from this size up travel gzip-compressed (the server inflates them with
#: its body limit); a push batch shrinks ~5x, a pull request is far below it.
DEFAULT_COMPRESS_MIN_BYTES = 1024


class HttpTransport:
    """``HttpTransport("https://crm.example.com")`` opens its own connection pool;
    ``HttpTransport(client=TestClient(app))`` reuses any ``httpx.Client``.

    ``compress_min_bytes=None`` turns request compression off (for a server or proxy
    that does not accept ``Content-Encoding: gzip``).
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        client: httpx.Client | None = None,
        timeout_s: float = 30.0,
        verify: bool | str = True,
        compress_min_bytes: int | None = DEFAULT_COMPRESS_MIN_BYTES,
    ) -> None:
        if client is None and base_url is None:
            raise ValueError("give a base_url or an httpx client")
        self._own = client is None
        self.compress_min_bytes = compress_min_bytes
        self._client = client or httpx.Client(
            base_url=base_url or "",
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)),
            verify=verify,
            headers={"Accept": "application/json"},
        )

    def send(self, request: TransportRequest) -> TransportResponse:
        headers = dict(request.headers)
        content = request.content
        if content is not None:
            headers.setdefault("Content-Type", "application/octet-stream")
        elif request.body is not None:
            content = json.dumps(request.body, ensure_ascii=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
            limit = self.compress_min_bytes
            if limit is not None and len(content) >= limit:
                content = gzip.compress(content, compresslevel=5)
                headers["Content-Encoding"] = "gzip"
        try:
            response = self._client.request(
                request.method,
                request.path,
                content=content,
                headers=headers,
                params=dict(request.params) if request.params else None,
            )
        except httpx.TransportError as exc:
            raise NetworkError(f"cannot reach the server ({type(exc).__name__})") from None
        return TransportResponse(response.status_code, response.content, dict(response.headers))

    def close(self) -> None:
        if self._own:
            self._client.close()
