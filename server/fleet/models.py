"""The ``device_health`` table: one row per device, what fleet health is built from.

Written only by :class:`server.fleet.recorder.ActivityRecorder` (buffered, flushed every
few seconds: no extra database round trip on a push or a pull) and read by the fleet
API and ``fieldsync doctor``. Three kinds of columns:

* **server-observed**: ``last_push_at_ms``, ``last_pull_at_ms``, ``checkpoint`` (served
  by the device's last pull), the last error the server answered the device
  (``server_error_*``; ``server_error_count`` counts failures in a row, a successful
  push or pull restarts it);
* **device-reported** (``DeviceStatus``, stamped ``status_at_ms`` in server time):
  pending writes and the age of the oldest, dead letters, open conflicts, failed
  attempts and the last error the device saw, schema version, and the clock offset
  (device clock minus server clock when the report arrived);
* the device's name, platform and app version from its reports also update
  ``devices`` itself.

Declared on :class:`server.models.Base`; migration ``0003_fleet_health``.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ..models import Base


class DeviceHealth(Base):
    __tablename__ = "device_health"

    device_id: Mapped[str] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    last_push_at_ms: Mapped[int | None] = mapped_column(BigInteger)
    last_pull_at_ms: Mapped[int | None] = mapped_column(BigInteger)
    #: The checkpoint the device's last pull was served (it stores it once applied).
    checkpoint: Mapped[str | None] = mapped_column(String(64))
    server_error_code: Mapped[str | None] = mapped_column(String(64))
    server_error_at_ms: Mapped[int | None] = mapped_column(BigInteger)
    #: ``push``, ``pull``, ``login``, ``refresh``, or the route of another request.
    server_error_endpoint: Mapped[str | None] = mapped_column(String(128))
    server_error_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    status_at_ms: Mapped[int | None] = mapped_column(BigInteger)
    pending_count: Mapped[int | None] = mapped_column(BigInteger)
    oldest_pending_age_s: Mapped[int | None] = mapped_column(BigInteger)
    dead_letters: Mapped[int | None] = mapped_column(BigInteger)
    open_conflicts: Mapped[int | None] = mapped_column(BigInteger)
    failed_attempts: Mapped[int | None] = mapped_column(BigInteger)
    device_error_code: Mapped[str | None] = mapped_column(String(64))
    device_error_at_ms: Mapped[int | None] = mapped_column(BigInteger)
    clock_offset_ms: Mapped[int | None] = mapped_column(BigInteger)
    schema_version: Mapped[int | None] = mapped_column(Integer)
