"""A transport that answers with a Python function (unit tests, offline demos)."""

from __future__ import annotations

from collections.abc import Callable

from .._errors import NetworkError
from .base import TransportRequest, TransportResponse

Handler = Callable[[TransportRequest], TransportResponse]


class MockTransport:
    """Answers requests with ``handler``; ``offline = True`` makes every request fail
    with :class:`~client_sdk.NetworkError`. ``requests`` keeps what was sent."""

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
