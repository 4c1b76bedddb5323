"""``DeviceStatus``: what only the device knows about its own sync health.

A device sends it as the optional ``device_status`` of every ``PushRequest`` and
``PullRequest``; the server stores the last one per device for fleet health and
``fieldsync doctor``. It is advisory, so it is read **tolerantly** even though it rides
in strict requests: unknown keys are ignored, a value of the wrong type or out of range
drops that one field (it becomes ``null``), over-long texts are cut, and a
``device_status`` that is not an object at all is dropped. A status report can never make
a push or a pull fail — an older server must keep accepting a newer app's reports.

``pending_count`` counts the writes queued on the device **when the request was sent,
including the mutations of that very push**: the server subtracts the batch it answered,
so a push that drains the outbox leaves ``0`` (not a count frozen at the last push).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)

#: Largest integer a JSON number carries exactly (also far beyond any real count).
_MAX_INT = 2**53 - 1
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _drop_invalid(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """Validate; on failure answer ``None`` instead of failing the whole request."""
    if value is None:
        return None
    try:
        return handler(value)
    except (ValidationError, ValueError, TypeError):
        return None


def _cut(limit: int) -> BeforeValidator:
    def cut(value: Any) -> Any:
        if isinstance(value, str):
            return _CONTROL.sub(" ", value)[:limit].strip() or None
        return value

    return BeforeValidator(cut)


def _whole(value: Any) -> Any:
    """Seconds and milliseconds measured as floats are rounded, not refused."""
    if isinstance(value, float) and value == value and abs(value) < _MAX_INT:
        return round(value)
    return value


_DROP = WrapValidator(_drop_invalid)
_WHOLE = BeforeValidator(_whole)
_NonNegative = Annotated[int, Field(ge=0, le=_MAX_INT)]
Count = Annotated[_NonNegative | None, _WHOLE, _DROP]
EpochMs = Annotated[_NonNegative | None, _WHOLE, _DROP]
ErrorCodeText = Annotated[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:\-]{1,64}$")] | None, _DROP]


Text32 = Annotated[Annotated[str, Field(max_length=32)] | None, _cut(32), _DROP]
Text64 = Annotated[Annotated[str, Field(max_length=64)] | None, _cut(64), _DROP]
Text128 = Annotated[Annotated[str, Field(max_length=128)] | None, _cut(128), _DROP]


class DeviceStatus(BaseModel):
    """The device's own view of its sync state (every field optional)."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "pending_count": 3,
                    "oldest_pending_age_s": 5400,
                    "dead_letters": 0,
                    "open_conflicts": 1,
                    "failed_attempts": 2,
                    "last_error_code": "network",
                    "last_error_at_ms": 1732363200000,
                    "device_clock_ms": 1732363212345,
                    "app_version": "1.4.0",
                    "platform": "android 14",
                    "device_name": "Pixel 7",
                    "schema_version": 1,
                }
            ]
        },
    )

    pending_count: Count = Field(
        default=None,
        description="Writes queued on the device when the request was sent, including "
        "this push's mutations.",
    )
    oldest_pending_age_s: Count = Field(
        default=None, description="Seconds the oldest queued write has waited."
    )
    dead_letters: Count = Field(
        default=None, description="Writes the server refused, kept on the device for the user."
    )
    open_conflicts: Count = Field(default=None, description="Conflicts waiting for the user.")
    failed_attempts: Count = Field(
        default=None,
        description="Sync attempts that failed in a row since the last success (e.g. the "
        "server was unreachable); 0 after a success.",
    )
    last_error_code: ErrorCodeText = Field(
        default=None,
        description="Error code of the last failed sync attempt (a protocol error code, or "
        "`network` when the server could not be reached); null when the last attempt "
        "succeeded.",
    )
    last_error_at_ms: EpochMs = Field(
        default=None, description="Device time of that failure (epoch ms)."
    )
    device_clock_ms: EpochMs = Field(
        default=None,
        description="The device's wall clock when it sent the request (epoch ms): the server "
        "derives the clock offset from it.",
    )
    app_version: Text32 = Field(default=None, description="Version of the app.")
    platform: Text64 = Field(default=None, description='e.g. "android 14", "ios 17".')
    device_name: Text128 = Field(default=None, description='e.g. "Pixel 7".')
    schema_version: Annotated[Annotated[int, Field(ge=1, le=_MAX_INT)] | None, _DROP] = Field(
        default=None, description="Schema version of the app's local store."
    )


#: The type of ``device_status`` on requests: a status that is not an object is dropped.
OptionalDeviceStatus = Annotated[DeviceStatus | None, _DROP]
