"""Fleet health: per device, what the server saw and what the device reported.

:func:`fleet_health` turns ``devices`` + ``device_health`` rows into
:class:`DeviceHealthOut` — the manager device API, the console and ``fieldsync doctor``
all read it from here. The lag behind the server is computed when asked (never on a
sync request): the changes in the user's scope after the checkpoint the device was last
served, counted with the pull's own index range scans (:func:`server.repository.backlog`),
and the age of the oldest of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..accounts import Principal, principal_for
from ..models import Device, User
from ..repository.pull import backlog
from .models import DeviceHealth

#: Lag is counted up to this many changes ("at least 100000 behind").
LAG_CAP = 100_000


def ms_to_datetime(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


class LastError(BaseModel):
    code: str = Field(description="An error code of docs/protocol.md, or `network`.")
    at: datetime | None
    source: Literal["server", "device"] = Field(
        description="`server`: the server answered the device with this error; `device`: "
        "the device reported it (e.g. the server was unreachable)."
    )
    endpoint: str | None = Field(default=None, description="The route, for server errors.")


class Lag(BaseModel):
    changes: int = Field(description="Changes in the user's scope the device has not pulled.")
    capped: bool = Field(description=f"True when there are at least {LAG_CAP} (counting stops).")
    seconds: int | None = Field(
        description="Age of the oldest change it is missing; null when it is up to date."
    )
    resync_required: bool = Field(
        description="Its checkpoint is older than the purge horizon (or from before a "
        "restore): its next pull starts a full resync."
    )


class DeviceHealthOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "last_push_at": "2026-11-23T09:12:00Z",
                    "last_pull_at": "2026-11-23T09:12:01Z",
                    "checkpoint": "v1:4711",
                    "lag": {
                        "changes": 12,
                        "capped": False,
                        "seconds": 340,
                        "resync_required": False,
                    },
                    "pending_writes": 0,
                    "oldest_pending_age_s": None,
                    "dead_letters": 1,
                    "open_conflicts": 0,
                    "failed_attempts": 0,
                    "errors_in_a_row": 0,
                    "last_error": {
                        "code": "network",
                        "at": "2026-11-23T08:01:00Z",
                        "source": "device",
                        "endpoint": None,
                    },
                    "clock_offset_ms": 1200,
                    "schema_version": 1,
                    "reported_at": "2026-11-23T09:12:01Z",
                }
            ]
        }
    )

    last_push_at: datetime | None
    last_pull_at: datetime | None
    checkpoint: str | None = Field(description="The checkpoint its last pull was served.")
    lag: Lag | None = Field(description="Null when the device never pulled.")
    pending_writes: int | None = Field(
        description="Writes queued on the device, as last reported (0 once a push drains them)."
    )
    oldest_pending_age_s: int | None = Field(
        description="Age of its oldest queued write when it last reported."
    )
    dead_letters: int | None
    open_conflicts: int | None
    failed_attempts: int | None = Field(
        description="Sync attempts that failed in a row, as the device last reported."
    )
    errors_in_a_row: int = Field(
        description="Requests of this device the server answered with an error since its "
        "last successful push or pull."
    )
    last_error: LastError | None = Field(
        description="The newest of the last error the server answered and the last one the "
        "device reported; null when its last attempt succeeded."
    )
    clock_offset_ms: int | None = Field(
        description="Device clock minus server clock at its last report (positive: ahead)."
    )
    schema_version: int | None
    reported_at: datetime | None = Field(description="When the device last sent a status.")


def _server_error_is_current(row: DeviceHealth) -> bool:
    """An error answered after the device's last successful push or pull."""
    if not row.server_error_code or row.server_error_at_ms is None:
        return False
    return row.server_error_at_ms > max(row.last_push_at_ms or 0, row.last_pull_at_ms or 0)


def _last_error(row: DeviceHealth) -> LastError | None:
    server = None
    if _server_error_is_current(row):
        server = LastError(
            code=row.server_error_code,
            at=ms_to_datetime(row.server_error_at_ms),
            source="server",
            endpoint=row.server_error_endpoint,
        )
    device = None
    if row.device_error_code:
        # The device's clock may be off: bring its time onto the server's clock.
        at = row.device_error_at_ms
        if at is not None and row.clock_offset_ms is not None:
            at -= row.clock_offset_ms
        device = LastError(code=row.device_error_code, at=ms_to_datetime(at), source="device")
    if server is None or device is None:
        return server or device
    server_at = row.server_error_at_ms or 0
    device_at = int(device.at.timestamp() * 1000) if device.at else 0
    return server if server_at >= device_at else device


def _lag(session: Session, principal: Principal, row: DeviceHealth, now_ms: int) -> Lag | None:
    if row.last_pull_at_ms is None:
        return None
    found = backlog(session.connection(), principal, row.checkpoint, cap=LAG_CAP)
    seconds = None if found.oldest_ms is None else max(0, (now_ms - found.oldest_ms) // 1000)
    return Lag(
        changes=found.changes,
        capped=found.capped,
        seconds=seconds,
        resync_required=found.resync,
    )


def health_of(
    session: Session, principal: Principal | None, row: DeviceHealth | None, now_ms: int
) -> DeviceHealthOut:
    """One device's health (``principal``: its user, for the lag; None skips the lag)."""
    if row is None:
        row = DeviceHealth(server_error_count=0)
    pending = row.pending_count
    return DeviceHealthOut(
        last_push_at=ms_to_datetime(row.last_push_at_ms),
        last_pull_at=ms_to_datetime(row.last_pull_at_ms),
        checkpoint=row.checkpoint,
        lag=_lag(session, principal, row, now_ms) if principal is not None else None,
        pending_writes=pending,
        oldest_pending_age_s=row.oldest_pending_age_s if pending else None,
        dead_letters=row.dead_letters,
        open_conflicts=row.open_conflicts,
        failed_attempts=row.failed_attempts,
        errors_in_a_row=(row.server_error_count or 0) if _server_error_is_current(row) else 0,
        last_error=_last_error(row),
        clock_offset_ms=row.clock_offset_ms,
        schema_version=row.schema_version,
        reported_at=ms_to_datetime(row.status_at_ms),
    )


def fleet_health(
    session: Session, devices: Sequence[Device], *, now_ms: int, with_lag: bool = True
) -> dict[str, DeviceHealthOut]:
    """Health of each device, keyed by device id (one query for the rows, then the lag
    of each device that ever pulled)."""
    ids = [d.id for d in devices]
    rows = {
        r.device_id: r
        for r in session.scalars(select(DeviceHealth).where(DeviceHealth.device_id.in_(ids)))
    }
    principals: dict[str, Principal | None] = {}
    out: dict[str, DeviceHealthOut] = {}
    for device in devices:
        principal = None
        if with_lag:
            if device.user_id not in principals:
                user = session.get(User, device.user_id)
                principals[device.user_id] = (
                    principal_for(session, user, device.id) if user is not None else None
                )
            principal = principals[device.user_id]
        out[device.id] = health_of(session, principal, rows.get(device.id), now_ms)
    return out
