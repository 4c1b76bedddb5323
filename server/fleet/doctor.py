"""``fieldsync doctor``: why isn't this phone syncing? — a plain-language diagnosis.

:func:`diagnose` gathers what the server knows about one device (:class:`Facts`: the
device and its user, its fleet health, its sign-in, the writes the server refused it)
and runs :data:`RULES`, a table of small functions each answering one question ("is it
revoked?", "is its clock off?", "are its pushes stuck on one write?"). Every finding
says what is wrong in words a team admin understands, and what to do about it. The CLI
(``fieldsync doctor DEVICE``), the manager API (``GET /v1/manager/devices/{id}/diagnosis``)
and the console all call :func:`diagnose`.

Thresholds are module constants (documented in docs/server.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from sync_protocol import ErrorCode, SchemaRegistry

from ..accounts import principal_for
from ..models import AuditEntry, Device, RefreshToken, User
from ..settings import Settings
from .health import DeviceHealthOut, health_of, ms_to_datetime
from .models import DeviceHealth

#: Pushes failing this many times in a row with writes waiting: stuck on a poison write.
STUCK_AFTER_ERRORS = 3
#: A clock this far off (and at least the server's ``max_drift_ms``) is reported.
MIN_CLOCK_SKEW_MS = 60_000
#: Missing changes older than this: the device is behind.
BEHIND_AFTER_S = 3600
#: A queued write older than this, or a device not heard from for this long, is reported.
QUIET_AFTER_S = 24 * 3600
#: Codes that mean "busy, try again" rather than "refused".
TRANSIENT = frozenset(
    {ErrorCode.SERVICE_UNAVAILABLE.value, ErrorCode.RATE_LIMITED.value, "network"}
)

Severity = Literal["problem", "warning", "info"]
_RANK: dict[str, int] = {"problem": 0, "warning": 1, "info": 2}


class Finding(BaseModel):
    code: str = Field(description="Stable identifier, e.g. `clock_skewed`, `poison_write`.")
    severity: Severity = Field(
        description="`problem`: it cannot sync; `warning`: it syncs but something needs "
        "attention; `info`: worth knowing."
    )
    summary: str = Field(description="What is wrong, in one sentence.")
    action: str = Field(description="What to do about it.")
    evidence: dict[str, Any] = Field(default_factory=dict)


class Diagnosis(BaseModel):
    device_id: str
    user_id: str
    username: str | None
    device_name: str | None
    platform: str | None
    app_version: str | None
    verdict: Literal["healthy", "attention", "broken"] = Field(
        description="`broken` when a finding is a problem, `attention` for a warning."
    )
    headline: str
    findings: list[Finding]
    health: DeviceHealthOut
    checked_at: datetime

    def text(self) -> str:
        """The diagnosis as the CLI prints it."""
        name = " / ".join(x for x in (self.device_name, self.platform, self.app_version) if x)
        lines = [
            f"device {self.device_id} ({name or 'unnamed'}) of {self.username or self.user_id}",
            f"verdict: {self.verdict.upper()} — {self.headline}",
        ]
        for finding in self.findings:
            lines.append(f"  [{finding.severity}] {finding.summary}")
            lines.append(f"      what to do: {finding.action}")
        return "\n".join(lines)


@dataclass(slots=True)
class Facts:
    """Everything the rules look at, read once."""

    device: Device
    user: User | None
    row: DeviceHealth
    health: DeviceHealthOut
    settings: Settings
    schema: SchemaRegistry
    now_ms: int
    #: The device's newest refresh token: (expires_at, rotated_at, revoked_at) or None.
    token: tuple[datetime, datetime | None, datetime | None] | None = None
    #: The newest writes the server refused this device: (at_ms, target, code).
    rejected: list[tuple[int, str | None, str | None]] = field(default_factory=list)

    @property
    def ever_synced(self) -> bool:
        return self.row.last_push_at_ms is not None or self.row.last_pull_at_ms is not None

    @property
    def last_sync_ms(self) -> int | None:
        times = [t for t in (self.row.last_push_at_ms, self.row.last_pull_at_ms) if t]
        return max(times) if times else None

    @property
    def current_error(self) -> tuple[str, str, int] | None:
        """The server's error (code, endpoint, in a row) answered after the last success."""
        error = self.health.last_error
        if error is None or error.source != "server":
            return None
        return error.code, error.endpoint or "", self.health.errors_in_a_row


def ago(ms: int | None, now_ms: int) -> str:
    """``3 days ago`` / ``5 minutes ago`` / ``never``."""
    if ms is None:
        return "never"
    return f"{_span(max(0, now_ms - ms) // 1000)} ago"


def _span(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = (seconds + size // 2) // size  # to the nearest unit: 2 d 23 h is "3 days"
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def _when(ms: int | None) -> str:
    dt = ms_to_datetime(ms)
    return dt.strftime("%Y-%m-%d %H:%M UTC") if dt else "never"


# ---- the rules ----------------------------------------------------------------------------

Rule = Callable[[Facts], "Finding | None"]


def revoked(f: Facts) -> Finding | None:
    if f.device.revoked_at is None:
        return None
    revoked_ms = int(f.device.revoked_at.timestamp() * 1000)
    tried = f.current_error
    after = ""
    if tried and tried[0] == ErrorCode.DEVICE_REVOKED.value:
        after = f" It last tried to sync {ago(f.row.server_error_at_ms, f.now_ms)} and was told to stop."
    erase = (
        "and told to erase its data" if f.device.wipe else "(its unsent writes stay on the phone)"
    )
    return Finding(
        code="revoked",
        severity="problem",
        summary=f"This device was revoked {ago(revoked_ms, f.now_ms)} {erase}.{after}",
        action="Nothing, if the phone was lost or replaced. To use this phone again the rep "
        "reinstalls the app (a revoked device id never syncs again) and signs in; export "
        "any unsent writes from the app first.",
        evidence={"revoked_at": f.device.revoked_at.isoformat(), "wipe": bool(f.device.wipe)},
    )


def account_disabled(f: Facts) -> Finding | None:
    if f.user is not None and f.user.active:
        return None
    return Finding(
        code="account_disabled",
        severity="problem",
        summary="The rep's account is deactivated (or gone): the server refuses it.",
        action="Reactivate the user in the manager API if the rep still works here.",
    )


def never_synced(f: Facts) -> Finding | None:
    if f.ever_synced:
        return None
    signed_in = int(f.device.created_at.timestamp() * 1000)
    refused = ""
    if f.current_error:
        refused = f" Its attempts were refused with `{f.current_error[0]}`."
    return Finding(
        code="never_synced",
        severity="problem",
        summary=f"Signed in {ago(signed_in, f.now_ms)} but has never synced.{refused}",
        action="Have the rep open the app while online and wait for the first sync to "
        "finish. If it still does not, see the other findings here.",
        evidence={"signed_in_at": f.device.created_at.isoformat()},
    )


def signed_out(f: Facts) -> Finding | None:
    if f.token is None:
        return None
    expires_at, rotated_at, revoked_at = f.token
    expires_ms = int(expires_at.timestamp() * 1000)
    if revoked_at is not None:
        why = f"its sign-in was ended {ago(int(revoked_at.timestamp() * 1000), f.now_ms)}"
        why += " (signed out, or a refresh token was replayed)"
    elif expires_ms <= f.now_ms and rotated_at is None:
        why = f"its sign-in expired {ago(expires_ms, f.now_ms)}"
    else:
        return None
    return Finding(
        code="token_expired",
        severity="problem",
        summary=f"Signed out: {why}, so the app cannot get a new access token.",
        action="The rep signs in again in the app (writes made offline are kept and sync "
        "after signing in).",
        evidence={"refresh_token_expires_at": expires_at.isoformat()},
    )


def schema_too_old(f: Facts) -> Finding | None:
    minimum = f.schema.min_client_version
    error = f.current_error
    reported = f.row.schema_version
    if not (
        (
            error
            and error[0] in (ErrorCode.SCHEMA_TOO_OLD.value, ErrorCode.PROTOCOL_UNSUPPORTED.value)
        )
        or (reported is not None and reported < minimum)
    ):
        return None
    version = f"v{reported}" if reported is not None else "an older version"
    return Finding(
        code="schema_too_old",
        severity="problem",
        summary=f"The app is too old for this server: its data schema is {version}, the "
        f"server needs v{minimum} or later, and refuses its syncs.",
        action="Update the app on the phone (unsent writes are kept and sync after the update).",
        evidence={"device_schema": reported, "server_minimum": minimum},
    )


def clock_skewed(f: Facts) -> Finding | None:
    offset = f.row.clock_offset_ms
    limit = max(MIN_CLOCK_SKEW_MS, f.settings.max_drift_ms)
    refused = bool(f.current_error and f.current_error[0] == ErrorCode.CLOCK_SKEW.value)
    if not refused and (offset is None or abs(offset) <= limit):
        return None
    direction = "ahead of" if (offset or 0) >= 0 else "behind"
    how_far = _span(abs(offset or 0) // 1000) + f" {direction}" if offset else "far off from"
    if refused or (f.settings.clock_policy == "refuse" and (offset or 0) > 0):
        effect, severity = "the server refuses its writes until the clock is fixed", "problem"
    else:
        effect = "its edits get the server's time instead, which can make it lose ties"
        severity = "warning"
    return Finding(
        code="clock_skewed",
        severity=severity,  # type: ignore[arg-type]
        summary=f"The phone's clock is {how_far} the server's: {effect}.",
        action="On the phone, turn on automatic date and time (network time).",
        evidence={"clock_offset_ms": offset, "max_drift_ms": f.settings.max_drift_ms},
    )


def poison_write(f: Facts) -> Finding | None:
    error = f.current_error
    if error is None or not error[1].endswith("/push") or error[0] in TRANSIENT:
        return None
    code, _endpoint, in_a_row = error
    pending = f.row.pending_count
    if in_a_row < STUCK_AFTER_ERRORS or pending == 0:
        return None
    waiting = f"{pending} writes are" if pending is not None else "its writes are"
    return Finding(
        code="poison_write",
        severity="problem",
        summary=f"Stuck on a write the server cannot take: its last {in_a_row} pushes failed "
        f"with `{code}` (since {_when(f.row.server_error_at_ms)}), and {waiting} queued "
        "behind it.",
        action=_POISON_ACTIONS.get(code, _POISON_ACTIONS["*"]),
        evidence={"code": code, "errors_in_a_row": in_a_row, "pending_writes": pending},
    )


_POISON_ACTIONS = {
    ErrorCode.INTERNAL.value: "The server fails on this write (a server bug): look for "
    "`internal_error` in the server log at the times above (each line has a request id), "
    "report it, and upgrade the server; the write stays queued on the phone and syncs "
    "once the server takes it.",
    ErrorCode.PAYLOAD_TOO_LARGE.value: "One write is larger than the server accepts: raise "
    "FIELDSYNC_MAX_BODY_BYTES, or have the rep shorten the record.",
    ErrorCode.VALIDATION_FAILED.value: "The app sends a request this server does not "
    "accept: update the app; the write stays queued.",
    "*": "Update the app and the server to matching versions; if it persists, report the "
    "code with the device id. The write stays queued on the phone.",
}


def rejected_writes(f: Facts) -> Finding | None:
    dead = f.row.dead_letters
    if not dead and not (dead is None and f.rejected):
        return None
    codes = sorted({code for _at, _target, code in f.rejected if code})
    count = f"{dead} writes" if dead else "Writes"
    last = f" (the last {ago(f.rejected[0][0], f.now_ms)})" if f.rejected else ""
    because = f", refused as {', '.join(f'`{c}`' for c in codes)}" if codes else ""
    return Finding(
        code="rejected_writes",
        severity="warning",
        summary=f"{count} the server refused wait on the phone{because}{last}: they are not "
        "on the server.",
        action="The rep opens Rejected writes in the app and fixes or discards each one.",
        evidence={
            "dead_letters": dead,
            "recent": [{"target": t, "code": c, "at_ms": at} for at, t, c in f.rejected],
        },
    )


def server_refusing(f: Facts) -> Finding | None:
    """Any other error the server keeps answering (not covered by a rule above)."""
    error = f.current_error
    covered = {
        ErrorCode.DEVICE_REVOKED.value,
        ErrorCode.SCHEMA_TOO_OLD.value,
        ErrorCode.PROTOCOL_UNSUPPORTED.value,
        ErrorCode.CLOCK_SKEW.value,
    }
    if error is None or error[0] in covered:
        return None
    code, endpoint, in_a_row = error
    if endpoint.endswith("/push") and code not in TRANSIENT and in_a_row >= STUCK_AFTER_ERRORS:
        return None  # poison_write says it
    busy = code in TRANSIENT
    return Finding(
        code="server_busy" if busy else "server_errors",
        severity="warning",
        summary=f"Its last {in_a_row} request(s) to {endpoint or 'the server'} were answered "
        f"`{code}` ({ago(f.row.server_error_at_ms, f.now_ms)}).",
        action="The server was busy; the app retries by itself. If it lasts, check the "
        "server's load and database."
        if busy
        else "Check the server log for this device at that time; the app retries at its next sync.",
        evidence={"code": code, "endpoint": endpoint, "errors_in_a_row": in_a_row},
    )


def unreachable(f: Facts) -> Finding | None:
    attempts = f.row.failed_attempts or 0
    if f.row.device_error_code == "network" and attempts > 0:
        at = f.health.last_error.at if f.health.last_error else None
        when = f" (the last at {at.strftime('%Y-%m-%d %H:%M UTC')})" if at else ""
        return Finding(
            code="unreachable",
            severity="warning",
            summary=f"The phone could not reach the server in its last {attempts} attempts{when}.",
            action="Check the phone's connection (mobile data for the app, Wi-Fi login "
            "pages) and that the app points at the right server address; if many phones "
            "say this, check the server's reachability (proxy, TLS certificate, DNS).",
            evidence={"failed_attempts": attempts},
        )
    last = f.last_sync_ms
    if last is None or f.now_ms - last < QUIET_AFTER_S * 1000:
        return None
    pending = f.row.pending_count
    waiting = f" with {pending} writes waiting" if pending else ""
    return Finding(
        code="silent",
        severity="warning" if pending else "info",
        summary=f"Not heard from since {_when(last)} ({ago(last, f.now_ms)}){waiting}.",
        action="The phone is off, offline, or cannot reach the server: have the rep open "
        "the app on a working connection.",
        evidence={"last_sync_at_ms": last, "pending_writes": pending},
    )


def behind(f: Facts) -> Finding | None:
    lag = f.health.lag
    if lag is None:
        return None
    if lag.resync_required:
        return Finding(
            code="resync_pending",
            severity="info",
            summary="It has been away longer than deleted records are kept: its next sync "
            "downloads everything again.",
            action="Nothing to do; the app keeps its unsent writes during the resync.",
        )
    if not lag.changes or (lag.seconds or 0) < BEHIND_AFTER_S:
        return None
    more = "+" if lag.capped else ""
    return Finding(
        code="behind",
        severity="warning",
        summary=f"Behind by {lag.changes}{more} changes, the oldest from "
        f"{_span(lag.seconds or 0)} ago; it last pulled {ago(f.row.last_pull_at_ms, f.now_ms)}.",
        action="Have the rep open the app online; see the other findings for why it stopped.",
        evidence={"changes": lag.changes, "oldest_s": lag.seconds},
    )


def pending_waiting(f: Facts) -> Finding | None:
    pending, age = f.row.pending_count, f.row.oldest_pending_age_s
    if not pending or age is None or f.row.status_at_ms is None:
        return None
    age_now = age + max(0, f.now_ms - f.row.status_at_ms) // 1000
    if age_now < QUIET_AFTER_S:
        return None
    return Finding(
        code="pending_old",
        severity="warning",
        summary=f"{pending} writes have waited on the phone for {_span(age_now)}.",
        action="They sync when the phone reaches the server; see the other findings.",
        evidence={"pending_writes": pending, "oldest_pending_age_s": age_now},
    )


def conflicts_waiting(f: Facts) -> Finding | None:
    if not f.row.open_conflicts:
        return None
    return Finding(
        code="open_conflicts",
        severity="info",
        summary=f"{f.row.open_conflicts} conflicts wait for the rep to choose a value.",
        action="The rep resolves them in the app's Conflicts screen (or a manager in the "
        "conflicts inbox).",
    )


#: In order; the first findings are the likeliest reasons.
RULES: tuple[Rule, ...] = (
    revoked,
    account_disabled,
    signed_out,
    schema_too_old,
    poison_write,
    never_synced,
    clock_skewed,
    server_refusing,
    unreachable,
    behind,
    pending_waiting,
    rejected_writes,
    conflicts_waiting,
)


# ---- gathering the facts ------------------------------------------------------------------


def _rejected(
    session: Session, device: Device, limit: int = 5
) -> list[tuple[int, str | None, str | None]]:
    rows = session.execute(
        select(AuditEntry.at_ms, AuditEntry.target, AuditEntry.details)
        .where(
            AuditEntry.user_id == device.user_id,
            AuditEntry.device_id == device.id,
            AuditEntry.action == "mutation.rejected",
        )
        .order_by(AuditEntry.id.desc())
        .limit(limit)
    ).all()
    found = []
    for at_ms, target, details in rows:
        try:
            code = json.loads(details or "{}").get("error")
        except (ValueError, AttributeError):
            code = None
        found.append((int(at_ms), target, code if isinstance(code, str) else None))
    return found


def _token(
    session: Session, device: Device
) -> tuple[datetime, datetime | None, datetime | None] | None:
    row = session.execute(
        select(RefreshToken.expires_at, RefreshToken.rotated_at, RefreshToken.revoked_at)
        .where(RefreshToken.device_id == device.id)
        .order_by(RefreshToken.id.desc())
        .limit(1)
    ).one_or_none()
    if row is None:
        return None
    return _aware(row[0]), _aware(row[1]), _aware(row[2])


def _aware(value: Any) -> Any:
    from datetime import UTC

    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def gather(
    session: Session, device: Device, *, settings: Settings, schema: SchemaRegistry, now_ms: int
) -> Facts:
    user = session.get(User, device.user_id)
    row = session.get(DeviceHealth, device.id) or DeviceHealth(
        device_id=device.id, server_error_count=0
    )
    principal = principal_for(session, user, device.id) if user is not None else None
    return Facts(
        device=device,
        user=user,
        row=row,
        health=health_of(session, principal, row, now_ms),
        settings=settings,
        schema=schema,
        now_ms=now_ms,
        token=_token(session, device),
        rejected=_rejected(session, device),
    )


def diagnose(
    session: Session, device: Device, *, settings: Settings, schema: SchemaRegistry, now_ms: int
) -> Diagnosis:
    """Why this device is (or is not) syncing: every finding of :data:`RULES`, worst first."""
    facts = gather(session, device, settings=settings, schema=schema, now_ms=now_ms)
    findings = [found for rule in RULES if (found := rule(facts)) is not None]
    if device.revoked_at is not None:  # nothing else matters until it is replaced
        findings = [x for x in findings if x.code in ("revoked", "rejected_writes")]
    findings.sort(key=lambda x: _RANK[x.severity])  # stable: rule order within a severity
    worst = findings[0].severity if findings else None
    verdict = {"problem": "broken", "warning": "attention"}.get(worst or "", "healthy")
    headline = findings[0].summary if findings else _healthy_headline(facts)
    return Diagnosis(
        device_id=device.id,
        user_id=device.user_id,
        username=facts.user.username if facts.user else None,
        device_name=device.name,
        platform=device.platform,
        app_version=device.app_version,
        verdict=verdict,  # type: ignore[arg-type]
        headline=headline,
        findings=findings,
        health=facts.health,
        checked_at=ms_to_datetime(now_ms),  # type: ignore[arg-type]
    )


def _healthy_headline(f: Facts) -> str:
    return f"Syncing normally: last synced {ago(f.last_sync_ms, f.now_ms)}, up to date."
