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

from .._rows import LocalCounts

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


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """What the app says about itself (``SyncConfig``) and its schema."""

    app_version: str | None
    platform: str | None
    schema_version: int
    #: The schema's name: a server serving another app's schema refuses the sync.
    schema_name: str | None = None


def device_status(counts: LocalCounts, device: DeviceInfo, now: float) -> dict[str, Any]:
    """The ``device_status`` object of a request leaving at ``now`` (nulls left out)."""
    oldest = counts.oldest_created_at
    values = {
        "pending_count": counts.pending_count,
        "oldest_pending_age_s": round(max(0.0, now - oldest)) if oldest is not None else None,
        "dead_letters": counts.dead_letters,
        "open_conflicts": counts.open_conflicts,
        "failed_attempts": counts.failed_attempts,
        "last_error_code": counts.last_error_code,
        "last_error_at_ms": counts.last_error_at_ms,
        "device_clock_ms": int(now * 1000),
        "app_version": device.app_version,
        "platform": device.platform,
        "device_name": counts.device_name,
        "schema_version": device.schema_version,
    }
    status = DeviceStatus.model_validate({k: v for k, v in values.items() if v is not None})
    body: dict[str, Any] = status.model_dump(mode="json", exclude_none=True)
    return body
