"""The ``device_status`` report a device sends with every push and pull (contract 3).

Pure: built from counts the runner reads off the local store. ``pending_count`` is the
outbox size when the request leaves, *including* the batch being pushed (the server
subtracts what it answered); ``failed_attempts``/``last_error_code`` describe the sync
attempts that failed in a row since the last success (``network`` when no answer came).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sync_protocol import DeviceStatus

NETWORK = "network"


@dataclass(frozen=True, slots=True)
class Health:
    """Consecutive failed sync attempts and the last one's code and time."""

    failed_attempts: int = 0
    last_error_code: str | None = None
    last_error_at_ms: int | None = None

    @classmethod
    def read(cls, raw: Any) -> Health:
        if not isinstance(raw, dict):
            return cls()
        return cls(
            int(raw.get("failed_attempts") or 0),
            raw.get("last_error_code"),
            raw.get("last_error_at_ms"),
        )

    def failed(self, code: str, at_ms: int) -> Health:
        return Health(self.failed_attempts + 1, code, at_ms)

    def as_json(self) -> dict[str, Any]:
        return {
            "failed_attempts": self.failed_attempts,
            "last_error_code": self.last_error_code,
            "last_error_at_ms": self.last_error_at_ms,
        }


def device_status(
    *,
    pending_count: int,
    oldest_pending_age_s: float | None,
    dead_letters: int,
    open_conflicts: int,
    health: Health,
    device_clock_ms: int,
    app_version: str | None,
    platform: str | None,
    device_name: str | None,
    schema_version: int,
) -> dict[str, Any]:
    """The ``device_status`` object (validated, nulls left out)."""
    values = {
        "pending_count": pending_count,
        "oldest_pending_age_s": round(oldest_pending_age_s) if oldest_pending_age_s else None,
        "dead_letters": dead_letters,
        "open_conflicts": open_conflicts,
        "failed_attempts": health.failed_attempts,
        "last_error_code": health.last_error_code,
        "last_error_at_ms": health.last_error_at_ms,
        "device_clock_ms": device_clock_ms,
        "app_version": app_version,
        "platform": platform,
        "device_name": device_name,
        "schema_version": schema_version,
    }
    status = DeviceStatus.model_validate({k: v for k, v in values.items() if v is not None})
    body: dict[str, Any] = status.model_dump(mode="json", exclude_none=True)
    return body
