"""What every view-model shares: change notification and the signed-in session.

A view-model holds the state a screen shows, as plain Python values, and the actions a
screen can take. The Kivy screen binds to it by subscribing: after any action or any
store change the view-model calls its listeners and the screen re-reads the state. No
Kivy here, so every behaviour is tested without a window.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from mobile_app.i18n import Translator

from .observable import Observable as Observable  # re-exported for the view-models
from .ports import AttachmentsPort, StorePort, SyncClientPort
from .undo import UndoQueue

MANAGER_ROLES = frozenset({"manager", "admin"})


@dataclass(frozen=True, slots=True)
class CurrentUser:
    id: str
    username: str
    display_name: str = ""
    role: str = "rep"

    @property
    def is_manager(self) -> bool:
        return self.role in MANAGER_ROLES


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Session:
    """The unlocked app: an open store, the sync client, who is signed in, the language.

    ``clock`` is injectable so tests can pin "today"; it returns an aware datetime.
    ``extras["attachment_transport"]`` (optional) sends photo uploads somewhere other
    than the sync client's HTTP connection.
    """

    store: StorePort
    user: CurrentUser
    tr: Translator
    client: SyncClientPort | None = None
    server_url: str = ""
    clock: Callable[[], datetime] = utc_now
    extras: dict[str, Any] = field(default_factory=dict)
    #: The photos kept beside the store; opened on first use (``photos.attachments_of``).
    attachments: AttachmentsPort | None = None
    #: The last one-tap action the rep may take back (task done, deal moved, deleted).
    undo: UndoQueue = field(default_factory=UndoQueue)

    def now(self) -> datetime:
        return self.clock()

    def now_iso(self) -> str:
        """The current time in the schema's DATETIME form (ISO 8601 with offset)."""
        return self.clock().astimezone(UTC).isoformat(timespec="seconds")

    def today(self) -> date:
        """Today's date where the phone is (local time zone)."""
        return self.clock().astimezone().date()


def parse_when(value: Any) -> datetime | None:
    """A ``last_sync_at``-like value (epoch seconds, datetime or ISO text) as aware UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 10_000_000_000 else value
        return datetime.fromtimestamp(seconds, UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def time_ago(tr: Translator, when: datetime, now: datetime) -> str:
    seconds = max(0.0, (now - when).total_seconds())
    if seconds < 60:
        return tr("time.just_now")
    if seconds < 3600:
        return tr("time.minutes", n=int(seconds // 60))
    if seconds < 86400:
        return tr("time.hours", n=int(seconds // 3600))
    return tr("time.days", n=int(seconds // 86400))


def parse_date(value: Any) -> date | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def local_datetime_text(value: Any) -> str:
    """An ISO DATETIME shown in the phone's time zone as ``YYYY-MM-DD HH:MM``."""
    when = parse_when(value)
    return when.astimezone().strftime("%Y-%m-%d %H:%M") if when else ""


def days_between(start: date, end: date) -> int:
    return (end - start).days


def add_days(day: date, n: int) -> date:
    return day + timedelta(days=n)


def error_parts(error: Any) -> tuple[str, str, dict[str, Any]]:
    """(code, message, details) of an error the SDK hands back.

    Dead letters carry the server's ``ErrorBody``; depending on where it was stored that
    is a pydantic model, a dict or an exception. All three shapes are read here.
    """
    if error is None:
        return "", "", {}
    if isinstance(error, dict):
        inner = error.get("error", error)
        if isinstance(inner, dict):
            details = inner.get("details") or {}
            return (
                str(inner.get("code", "")),
                str(inner.get("message", "")),
                details if isinstance(details, dict) else {},
            )
    code = getattr(error, "code", "")
    message = getattr(error, "message", None) or str(error)
    details = getattr(error, "details", None) or {}
    return (
        str(getattr(code, "value", code)),
        str(message),
        details if isinstance(details, dict) else {},
    )
