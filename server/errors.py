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
    ├── DeviceIdTaken       device_id_taken 409 — the device id belongs to another user
    ├── LeaseExpired        lease_expired  401 — offline past the lease: sign in again
    ├── UnsupportedMedia    unsupported_media_type 415 — Content-Encoding/-Type refused
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
    """Revocation stops sync; only ``wipe=True`` (a separate, explicit order) asks the
    device to erase its data. Without it the device keeps every unsent write readable
    and exportable."""

    code = ErrorCode.DEVICE_REVOKED

    def __init__(self, *, wipe: bool) -> None:
        message = (
            "this device has been revoked and must erase its data"
            if wipe
            else "this device has been revoked; its unsent work stays on it"
        )
        super().__init__(message, details={"wipe": wipe})


class DeviceIdTaken(ProtocolError):
    code = ErrorCode.DEVICE_ID_TAKEN

    def __init__(self) -> None:
        super().__init__(
            "this device id is registered to another user; generate a new device id",
        )


class LeaseExpired(ProtocolError):
    code = ErrorCode.LEASE_EXPIRED


class UnsupportedMedia(ProtocolError):
    code = ErrorCode.UNSUPPORTED_MEDIA_TYPE


class NotFound(ProtocolError):
    code = ErrorCode.NOT_FOUND


class RateLimited(ProtocolError):
    code = ErrorCode.RATE_LIMITED

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message, details={"retry_after_s": retry_after_s})
        self.retry_after_s = retry_after_s
