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

HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.TOKEN_EXPIRED: 401,
    ErrorCode.TOTP_REQUIRED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.DEVICE_REVOKED: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.CLOCK_SKEW: 409,
    ErrorCode.CONFLICT: 409,
    ErrorCode.RECORD_DELETED: 409,
    ErrorCode.APPEND_ONLY: 409,
    ErrorCode.RESYNC_REQUIRED: 410,
    ErrorCode.PRECONDITION_FAILED: 412,
    ErrorCode.BATCH_TOO_LARGE: 413,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.VALIDATION_FAILED: 422,
    ErrorCode.UNKNOWN_COLLECTION: 422,
    ErrorCode.PROTOCOL_UNSUPPORTED: 426,
    ErrorCode.SCHEMA_TOO_OLD: 426,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.INTERNAL: 500,
}


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
