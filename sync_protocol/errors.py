"""Error codes and the one error body every Fieldsync endpoint answers with.

Hierarchy::

    ProtocolError                 (any error that crosses the wire: code + message + details)
    ├── ProtocolUnsupported       protocol_unsupported — client speaks a version we don't
    ├── SchemaTooOld              schema_too_old       — client schema older than we accept
    ├── SchemaMismatch            schema_mismatch      — client's schema is another app's
    ├── ValidationFailed          validation_failed    — a message or mutation breaks its schema
    ├── ClockSkew                 clock_skew           — an HLC beyond the allowed drift
    ├── BatchTooLarge             batch_too_large      — more mutations than the server accepts
    └── ResyncRequired            resync_required      — checkpoint older than the purge horizon

Any other :class:`ErrorCode` is raised as ``ProtocolError(message, code=...)``.
:data:`HTTP_STATUS` maps every code to the HTTP status it is answered with.

The codes are stable: clients switch on ``code``, never on ``message``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ErrorCode(StrEnum):
    """Stable machine-readable error codes (the wire value is the lower-case string)."""

    PROTOCOL_UNSUPPORTED = "protocol_unsupported"
    SCHEMA_TOO_OLD = "schema_too_old"
    SCHEMA_MISMATCH = "schema_mismatch"
    FORBIDDEN = "forbidden"
    VALIDATION_FAILED = "validation_failed"
    RESYNC_REQUIRED = "resync_required"
    DEVICE_REVOKED = "device_revoked"
    CLOCK_SKEW = "clock_skew"
    BATCH_TOO_LARGE = "batch_too_large"
    UNAUTHORIZED = "unauthorized"
    TOKEN_EXPIRED = "token_expired"
    TOTP_REQUIRED = "totp_required"
    RATE_LIMITED = "rate_limited"
    NOT_FOUND = "not_found"
    UNKNOWN_COLLECTION = "unknown_collection"
    RECORD_DELETED = "record_deleted"
    APPEND_ONLY = "append_only"
    PRECONDITION_FAILED = "precondition_failed"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    CONFLICT = "conflict"
    SERVICE_UNAVAILABLE = "service_unavailable"
    MUTATION_ID_REUSED = "mutation_id_reused"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    DEVICE_ID_TAKEN = "device_id_taken"
    LEASE_EXPIRED = "lease_expired"
    INTERNAL = "internal_error"
    GROUP_REJECTED = "group_rejected"
    TOTAL_MISMATCH = "total_mismatch"
    POSSIBLE_DUPLICATE = "possible_duplicate"


#: The HTTP status each code is answered with when it is the whole response's error.
#: Codes marked "per mutation" normally travel inside ``MutationResult.error`` (HTTP 200).
HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.PROTOCOL_UNSUPPORTED: 426,
    ErrorCode.SCHEMA_TOO_OLD: 426,
    ErrorCode.SCHEMA_MISMATCH: 409,
    ErrorCode.FORBIDDEN: 403,  # also per mutation
    ErrorCode.VALIDATION_FAILED: 422,  # also per mutation
    ErrorCode.RESYNC_REQUIRED: 410,
    ErrorCode.DEVICE_REVOKED: 403,
    ErrorCode.CLOCK_SKEW: 409,  # a warning in PushResponse.warnings when clamped
    ErrorCode.BATCH_TOO_LARGE: 413,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.TOKEN_EXPIRED: 401,
    ErrorCode.TOTP_REQUIRED: 401,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.UNKNOWN_COLLECTION: 422,  # also per mutation
    ErrorCode.RECORD_DELETED: 409,  # per mutation
    ErrorCode.APPEND_ONLY: 409,  # per mutation
    ErrorCode.PRECONDITION_FAILED: 412,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.CONFLICT: 409,
    ErrorCode.SERVICE_UNAVAILABLE: 503,
    ErrorCode.MUTATION_ID_REUSED: 409,  # per mutation: same id, other content
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: 415,  # a Content-Encoding or Content-Type refused
    ErrorCode.DEVICE_ID_TAKEN: 409,  # the device id belongs to another user
    ErrorCode.LEASE_EXPIRED: 401,  # offline longer than the lease: sign in with a password
    ErrorCode.INTERNAL: 500,
    ErrorCode.GROUP_REJECTED: 409,  # per mutation: another member of its group failed
    ErrorCode.TOTAL_MISMATCH: 422,  # per mutation: stated totals differ from sync_protocol.orders
    ErrorCode.POSSIBLE_DUPLICATE: 409,  # per mutation: matches a record; resend with override
}


class ErrorBody(BaseModel):
    """The single JSON shape of every error answer: ``{"error": {code, message, details}}``."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "code": "protocol_unsupported",
                    "message": "protocol version 9 is not supported",
                    "details": {"supported": {"min": 1, "max": 1}},
                }
            ]
        }
    )

    code: ErrorCode
    message: str = Field(description="For a person; may change between releases.")
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorResponse(BaseModel):
    """Envelope of an error answer."""

    error: ErrorBody


class FieldError(BaseModel):
    """One field that failed validation (used in ``details.fields``)."""

    field: str
    code: str
    message: str


class ProtocolError(Exception):
    """An error that can be sent over the wire with a stable code."""

    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(
        self,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        code: ErrorCode | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}
        if code is not None:
            self.code = code

    @property
    def http_status(self) -> int:
        """The HTTP status this error is answered with (see :data:`HTTP_STATUS`)."""
        return HTTP_STATUS[self.code]

    def to_body(self) -> ErrorBody:
        return ErrorBody(code=self.code, message=self.message, details=self.details)


class ProtocolUnsupported(ProtocolError):
    code = ErrorCode.PROTOCOL_UNSUPPORTED


class SchemaTooOld(ProtocolError):
    code = ErrorCode.SCHEMA_TOO_OLD


class SchemaMismatch(ProtocolError):
    code = ErrorCode.SCHEMA_MISMATCH


class ValidationFailed(ProtocolError):
    code = ErrorCode.VALIDATION_FAILED

    def __init__(self, message: str, *, errors: list[FieldError] | None = None) -> None:
        errs = errors or []
        super().__init__(message, details={"fields": [e.model_dump() for e in errs]})
        self.errors = errs


class ClockSkew(ProtocolError):
    code = ErrorCode.CLOCK_SKEW


class BatchTooLarge(ProtocolError):
    code = ErrorCode.BATCH_TOO_LARGE


class ResyncRequired(ProtocolError):
    code = ErrorCode.RESYNC_REQUIRED
