"""What each device did, buffered in memory and written to ``device_health`` in batches.

A push, a pull or an error answered to a device only updates a small in-memory entry
per device (a few dictionary writes under a lock — no per-record work, no database
round trip on the request). :meth:`ActivityRecorder.flush` writes every entry touched
since the last flush in one short transaction; the server runs it every
``Settings.health_flush_interval_s`` seconds in the background and once at shutdown,
and the fleet API flushes before it reads, so within one process the view is exact.
With several processes or instances each flushes its own buffer: another process's
activity shows up within one interval.

Several processes may flush the same device, so every write is guarded to keep the
newest: push and pull times only move forward, a checkpoint is taken only with a
newer pull, a status only with a newer report, an error only with a newer error.

``pending_count`` has the meaning of :class:`sync_protocol.DeviceStatus`: the writes
queued when the request was sent, this push included. After a push the server stores
the count *minus the batch it answered* (each mutation left the outbox, as acknowledged
or as a dead letter), so a push that drains the outbox records ``0``.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, text

from sync_protocol import DeviceStatus

log = logging.getLogger("fieldsync.fleet")

#: Device-reported columns, each written only with a newer report (``status_at_ms``).
STATUS_COLUMNS = (
    "pending_count",
    "oldest_pending_age_s",
    "dead_letters",
    "open_conflicts",
    "failed_attempts",
    "device_error_code",
    "device_error_at_ms",
    "clock_offset_ms",
    "schema_version",
)
#: The device's identity from its reports: written to ``devices`` itself.
IDENTITY_COLUMNS = ("name", "platform", "app_version")


@dataclass(slots=True)
class _Entry:
    """Everything noted for one device since the last flush (newest wins)."""

    push_at: int | None = None
    pull_at: int | None = None
    checkpoint: str | None = None
    status_at: int | None = None
    status: dict[str, Any] = field(default_factory=dict)
    error_at: int | None = None
    error: tuple[str, str] | None = None
    #: A success since the last flush: the run of consecutive errors starts again.
    errors_reset: bool = False
    errors: int = 0
    identity: dict[str, str] = field(default_factory=dict)

    def absorb(self, newer: _Entry) -> None:
        """Fold ``newer`` (noted later) into this entry."""
        if newer.push_at is not None:
            self.push_at = max(self.push_at or 0, newer.push_at)
        if newer.pull_at is not None and newer.pull_at >= (self.pull_at or 0):
            self.pull_at, self.checkpoint = newer.pull_at, newer.checkpoint
        if newer.status_at is not None:
            self.status_at = newer.status_at
            self.status.update(newer.status)
        if newer.error_at is not None:
            self.error_at, self.error = newer.error_at, newer.error
        if newer.errors_reset:
            self.errors_reset, self.errors = True, newer.errors
        else:
            self.errors += newer.errors
        self.identity.update(newer.identity)


def _status_values(
    status: DeviceStatus | None, now_ms: int, schema_version: int | None = None
) -> dict[str, Any]:
    """The columns a report sets. A count left out keeps its stored value; the device's
    last error is always taken from the report (null: the last attempt succeeded)."""
    if status is None:
        return {} if schema_version is None else {"schema_version": schema_version}
    values: dict[str, Any] = {
        "device_error_code": status.last_error_code,
        "device_error_at_ms": status.last_error_at_ms if status.last_error_code else None,
    }
    for name in ("pending_count", "oldest_pending_age_s", "dead_letters", "open_conflicts"):
        value = getattr(status, name)
        if value is not None:
            values[name] = value
    if status.failed_attempts is not None:
        values["failed_attempts"] = status.failed_attempts
    if status.device_clock_ms is not None:
        values["clock_offset_ms"] = status.device_clock_ms - now_ms
    if status.schema_version is not None:
        values["schema_version"] = status.schema_version
    elif schema_version is not None:
        values["schema_version"] = schema_version
    return values


def _identity(status: DeviceStatus | None) -> dict[str, str]:
    if status is None:
        return {}
    found = {
        "name": status.device_name,
        "platform": status.platform,
        "app_version": status.app_version,
    }
    return {k: v for k, v in found.items() if v}


class ActivityRecorder:
    """The per-process buffer of device activity (see the module docstring)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._identities: dict[str, dict[str, str]] = {}

    # ---- noting (request threads) ----------------------------------------------------

    def _note(self, device_id: str, entry: _Entry) -> None:
        with self._lock:
            current = self._entries.get(device_id)
            if current is None:
                self._entries[device_id] = entry
            else:
                current.absorb(entry)

    def report(
        self,
        device_id: str,
        *,
        now_ms: int,
        status: DeviceStatus | None,
        schema_version: int,
        pending_total: int | None = None,
    ) -> None:
        """A push or pull arrived with this status (noted before it is served, so a
        refused request still tells what the device said)."""
        values = _status_values(status, now_ms, schema_version)
        if pending_total is not None and "pending_count" not in values:
            values["pending_count"] = pending_total
        self._note(
            device_id,
            _Entry(status_at=now_ms, status=values, identity=_identity(status)),
        )

    def clock_ahead(self, device_id: str, *, now_ms: int, drift_ms: int) -> None:
        """The device's timestamps ran ``drift_ms`` ahead of the server (a refused push)."""
        self._note(device_id, _Entry(status_at=now_ms, status={"clock_offset_ms": drift_ms}))

    def push(
        self,
        device_id: str,
        *,
        now_ms: int,
        status: DeviceStatus | None,
        pending_total: int | None,
        answered: int,
        rejected: int,
        clock_ahead_ms: int | None = None,
    ) -> None:
        """A push was answered: ``answered`` mutations left the device's outbox, of
        which ``rejected`` went to its dead letters. ``clock_ahead_ms``: how far its
        timestamps ran ahead of the server beyond the tolerated drift (None: within it).
        A device that does not report its clock gets that as its clock offset."""
        values = _status_values(status, now_ms)
        if answered and "clock_offset_ms" not in values:
            values["clock_offset_ms"] = clock_ahead_ms
        pending = status.pending_count if status is not None else None
        if pending is None:
            pending = pending_total
        if pending is not None:
            left = max(0, pending - answered)
            values["pending_count"] = left
            if left == 0:
                values["oldest_pending_age_s"] = None
        if rejected and "dead_letters" in values:
            values["dead_letters"] += rejected
        self._note(
            device_id,
            _Entry(
                push_at=now_ms,
                status_at=now_ms if values else None,
                status=values,
                errors_reset=True,
            ),
        )

    def pull(self, device_id: str, *, now_ms: int, checkpoint: str) -> None:
        """A pull page was served; ``checkpoint`` is the one the page carried (the
        device's status came with :meth:`report`)."""
        self._note(device_id, _Entry(pull_at=now_ms, checkpoint=checkpoint, errors_reset=True))

    def error(self, device_id: str, *, now_ms: int, code: str, endpoint: str) -> None:
        """The server answered this device's request with an error."""
        self._note(
            device_id,
            _Entry(error_at=now_ms, error=(code[:64], endpoint[:128]), errors=1),
        )

    # ---- flushing ----------------------------------------------------------------------

    def flush_quietly(self) -> None:
        """Flush for a reader that can live with slightly stale data if it fails."""
        try:
            self.flush()
        except Exception:
            log.warning("fleet health flush failed; serving what is stored", exc_info=True)

    @property
    def pending(self) -> int:
        """Devices with activity not yet written."""
        return len(self._entries)

    def flush(self) -> int:
        """Write every buffered entry; returns how many devices were written."""
        with self._flush_lock:
            with self._lock:
                entries, self._entries = self._entries, {}
            if not entries:
                return 0
            try:
                self._write(entries)
            except Exception:
                with self._lock:  # keep them for the next flush, under anything newer
                    for device_id, entry in entries.items():
                        newer = self._entries.get(device_id)
                        if newer is not None:
                            entry.absorb(newer)
                        self._entries[device_id] = entry
                raise
            return len(entries)

    def _write(self, entries: dict[str, _Entry]) -> None:
        ids = sorted(entries)  # one lock order for every writer
        rows = [_row(device_id, entries[device_id]) for device_id in ids]
        changed = [
            device_id
            for device_id in ids
            if entries[device_id].identity
            and self._identities.get(device_id) != entries[device_id].identity
        ]
        identities = [
            {"id": device_id, **{k: entries[device_id].identity.get(k) for k in IDENTITY_COLUMNS}}
            for device_id in changed
        ]
        with self._engine.begin() as conn:
            conn.execute(_INSERT, [{"id": device_id} for device_id in ids])
            conn.execute(_UPDATE, rows)
            if identities:
                conn.execute(_IDENTITY, identities)
        for device_id in changed:
            self._identities[device_id] = entries[device_id].identity


def _row(device_id: str, entry: _Entry) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": device_id,
        "push_at": entry.push_at,
        "pull_at": entry.pull_at,
        "checkpoint": entry.checkpoint,
        "status_at": entry.status_at,
        "error_at": entry.error_at,
        "error_code": entry.error[0] if entry.error else None,
        "error_endpoint": entry.error[1] if entry.error else None,
        "errors_reset": entry.errors_reset,
        "errors": entry.errors,
    }
    for name in STATUS_COLUMNS:
        row[f"set_{name}"] = name in entry.status
        row[name] = entry.status.get(name)
    return row


#: The SQL type of every parameter: PostgreSQL cannot infer the type of a NULL that is
#: only tested (``:x IS NOT NULL``), so each parameter is cast where it is used.
_TYPES = {
    "push_at": "BIGINT",
    "pull_at": "BIGINT",
    "status_at": "BIGINT",
    "error_at": "BIGINT",
    "errors": "INTEGER",
    "checkpoint": "VARCHAR(64)",
    "error_code": "VARCHAR(64)",
    "error_endpoint": "VARCHAR(128)",
    "device_error_code": "VARCHAR(64)",
    "schema_version": "INTEGER",
}


def _p(name: str) -> str:
    if name.startswith("set_") or name == "errors_reset":
        return f"CAST(:{name} AS BOOLEAN)"
    return f"CAST(:{name} AS {_TYPES.get(name, 'BIGINT')})"


def _newer(column: str, param: str) -> str:
    return f"({_p(param)} IS NOT NULL AND ({column} IS NULL OR {column} <= {_p(param)}))"


def _update_sql() -> str:
    newer_status = _newer("status_at_ms", "status_at")
    newer_pull = _newer("last_pull_at_ms", "pull_at")
    sets = [
        f"last_push_at_ms = CASE WHEN {_newer('last_push_at_ms', 'push_at')} "
        f"THEN {_p('push_at')} ELSE last_push_at_ms END",
        f"checkpoint = CASE WHEN {newer_pull} THEN {_p('checkpoint')} ELSE checkpoint END",
        f"last_pull_at_ms = CASE WHEN {newer_pull} THEN {_p('pull_at')} ELSE last_pull_at_ms END",
        f"status_at_ms = CASE WHEN {newer_status} THEN {_p('status_at')} ELSE status_at_ms END",
        f"server_error_count = CASE WHEN {_p('errors_reset')} THEN {_p('errors')} "
        f"ELSE server_error_count + {_p('errors')} END",
    ]
    newer_error = _newer("server_error_at_ms", "error_at")
    for column, param in (
        ("server_error_code", "error_code"),
        ("server_error_endpoint", "error_endpoint"),
        ("server_error_at_ms", "error_at"),
    ):
        sets.append(f"{column} = CASE WHEN {newer_error} THEN {_p(param)} ELSE {column} END")
    for name in STATUS_COLUMNS:
        sets.append(
            f"{name} = CASE WHEN {_p('set_' + name)} AND {newer_status} "
            f"THEN {_p(name)} ELSE {name} END"
        )
    return f"UPDATE device_health SET {', '.join(sets)} WHERE device_id = :id"


_INSERT = text(
    "INSERT INTO device_health (device_id, server_error_count) "
    "SELECT id, 0 FROM devices WHERE id = :id ON CONFLICT (device_id) DO NOTHING"
)
_UPDATE = text(_update_sql())
_IDENTITY = text(
    "UPDATE devices SET name = COALESCE(:name, name), platform = COALESCE(:platform, platform), "
    "app_version = COALESCE(:app_version, app_version) WHERE id = :id"
)
