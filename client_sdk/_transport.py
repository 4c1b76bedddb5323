"""The transport seam: how sync requests reach a server.

A transport moves one JSON request and returns the status and raw body; it knows nothing
of sync. Failing to get *any* answer raises :class:`NetworkError` (the sync runner
retries those with backoff). Any HTTP answer, error or not, is returned as is.

* :class:`HttpTransport` — httpx over the network, or wrapping any ``httpx.Client``
  (FastAPI's ``TestClient`` included, for in-process tests).
* :class:`MockTransport` — calls a Python function; for unit tests and offline demos
  (see :mod:`client_sdk.testing` for a whole fake server).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from ._errors import NetworkError


@dataclass(frozen=True, slots=True)
class TransportRequest:
    method: str
    path: str
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TransportResponse:
    status: int
    content: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.content) if self.content else None

    @classmethod
    def of(cls, status: int, body: Any, headers: dict[str, str] | None = None) -> TransportResponse:
        content = json.dumps(body, ensure_ascii=False).encode("utf-8") if body is not None else b""
        return cls(status, content, headers or {})


class Transport(Protocol):
    def send(self, request: TransportRequest) -> TransportResponse:
        """Send one request; raise :class:`NetworkError` when no answer arrives."""
        ...

    def close(self) -> None: ...


class HttpTransport:
    """JSON over HTTP with httpx.

    ``HttpTransport("https://crm.example.com")`` opens its own client;
    ``HttpTransport(client=TestClient(app))`` reuses any ``httpx.Client``.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        client: httpx.Client | None = None,
        timeout_s: float = 30.0,
        verify: bool | str = True,
    ) -> None:
        if client is None and base_url is None:
            raise ValueError("give a base_url or an httpx client")
        self._own = client is None
        self._client = client or httpx.Client(
            base_url=base_url or "",
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)),
            verify=verify,
            headers={"Accept": "application/json"},
        )

    def send(self, request: TransportRequest) -> TransportResponse:
        try:
            if request.body is None:
                response = self._client.request(
                    request.method, request.path, headers=request.headers
                )
            else:
                response = self._client.request(
                    request.method,
                    request.path,
                    content=json.dumps(request.body, ensure_ascii=False).encode("utf-8"),
                    headers={**request.headers, "Content-Type": "application/json"},
                )
        except httpx.TransportError as exc:
            raise NetworkError(f"cannot reach the server ({type(exc).__name__})") from None
        return TransportResponse(response.status_code, response.content, dict(response.headers))

    def close(self) -> None:
        if self._own:
            self._client.close()


Handler = Callable[[TransportRequest], TransportResponse]


class MockTransport:
    """Answers requests with a function; ``offline = True`` makes every request fail."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.offline = False
        self.requests: list[TransportRequest] = []

    def send(self, request: TransportRequest) -> TransportResponse:
        self.requests.append(request)
        if self.offline:
            raise NetworkError("offline (mock)")
        return self.handler(request)

    def close(self) -> None:
        return None
