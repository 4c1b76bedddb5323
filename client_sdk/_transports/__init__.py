"""Talking to the server: one bytes-capable transport shared by sync and attachments.

A transport moves one request (a JSON body or raw bytes) and returns the status, headers
and raw body; it knows nothing of sync. Failing to get *any* answer raises
:class:`~client_sdk.NetworkError`; any HTTP answer, error or not, is returned as is.
What an answer means (retry, refresh, resync, revoked, fail) is decided by
:mod:`client_sdk._engine.responses`, and the one loop acting on it is the runner's.
"""

from .base import Transport, TransportRequest, TransportResponse
from .http import HttpTransport
from .mock import Handler, MockTransport

__all__ = [
    "Handler",
    "HttpTransport",
    "MockTransport",
    "Transport",
    "TransportRequest",
    "TransportResponse",
]
