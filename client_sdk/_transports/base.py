"""The transport seam: one request in, one answer (status, headers, bytes) out."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class TransportRequest:
    """One HTTP request. ``body`` is JSON (encoded by the transport, gzip when large);
    ``content`` is raw bytes sent as is (attachment chunks); at most one of the two."""

    method: str
    path: str
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None
    params: Mapping[str, str] | None = None


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
        """Send one request; raise :class:`~client_sdk.NetworkError` when no answer arrives."""
        ...

    def close(self) -> None: ...
