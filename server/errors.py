"""Server-side errors and their HTTP statuses.

Hierarchy (the protocol's own classes live in :mod:`sync_protocol.errors`)::

    ProtocolError
    ├── (sync_protocol) ProtocolUnsupported, SchemaTooOld, ValidationFailed, ClockSkew,
    │                   BatchTooLarge, ResyncRequired
    ├── Unauthorized        unauthorized   401 — no, bad or unknown credentials
    ├── TokenExpired        token_expired  401 — access token past its expiry: refresh it
    ├── TotpRequired        totp_required  401 — the account needs a one-time code
    ├── Forbidden           forbidden      403 — authenticated but not allowed
    ├── DeviceRevoked       device_revoked 403 — details {"wipe": bool}
    ├── NotFound            not_found      404
    └── RateLimited         rate_limited   429 — details {"retry_after_s": n}

Every error leaves the server as ``{"error": {"code", "message", "details"}}`` through
the one handler in :mod:`server.app`; :data:`HTTP_STATUS` maps each code to its status.
"""

from __future__ import annotations

from sync_protocol import ErrorCode, ProtocolError
from sync_protocol.errors import HTTP_STATUS as PROTOCOL_HTTP_STATUS

#: One table for client and server: the protocol package owns the code → status map.
HTTP_STATUS = PROTOCOL_HTTP_STATUS


def http_status(error: ProtocolError) -> int:
    return HTTP_STATUS.get(error.code, 400)


class Unauthorized(ProtocolError):
    code = ErrorCode.UNAUTHORIZED


class TokenExpired(ProtocolError):
    code = ErrorCode.TOKEN_EXPIRED


class TotpRequired(ProtocolError):
    code = ErrorCode.TOTP_REQUIRED


class Forbidden(ProtocolError):
    code = ErrorCode.FORBIDDEN


class DeviceRevoked(ProtocolError):
    code = ErrorCode.DEVICE_REVOKED

    def __init__(self, *, wipe: bool = True) -> None:
        super().__init__(
            "this device has been revoked; sign in again from an authorised device",
            details={"wipe": wipe},
        )


class NotFound(ProtocolError):
    code = ErrorCode.NOT_FOUND


class RateLimited(ProtocolError):
    code = ErrorCode.RATE_LIMITED

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message, details={"retry_after_s": retry_after_s})
        self.retry_after_s = retry_after_s
