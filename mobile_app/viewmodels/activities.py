"""Log a call, an e-mail, a meeting or a note (visits have their own form: ``visit.py``).

Every activity is an append-only ``activities`` record — it never conflicts, whoever
syncs first. A next follow-up date also creates an open follow-up task due at 09:00
that day and moves the customer's ``next_follow_up``; the customer's
``last_contacted_at`` (``max`` merge) moves to the activity's time. Time is picked as a
date and a time of day in the phone's time zone and stored in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

from sync_protocol import CRM_SCHEMA, ValidationFailed

from .base import Observable, Session
from .fields import messages_by_field

ACTIVITY_TYPES = ("call", "email", "meeting", "visit", "note")
OUTCOMES = CRM_SCHEMA["activities"].fields["outcome"].choices
FOLLOW_UP_HOUR = 9


def local_to_utc_iso(day: str, clock: str) -> str:
    """``("2026-03-10", "14:30")`` typed in the phone's zone → ISO 8601 UTC; ValueError if bad."""
    when = datetime.strptime(f"{day.strip()} {clock.strip()}", "%Y-%m-%d %H:%M")
    return when.astimezone().astimezone(UTC).isoformat(timespec="seconds")


def follow_up(
    session: Session,
    customer_id: str,
    day: str,
    title: str,
    *,
    activity_id: str | None = None,
    occurred_at: str | None = None,
) -> str | None:
    """The open follow-up task for ``day`` (09:00 local) and the customer's dates; task id."""
    store = session.store
    task_id: str | None = None
    if day:
        due = datetime.combine(datetime.fromisoformat(day).date(), time(FOLLOW_UP_HOUR))
        task: dict[str, Any] = {
            "customer_id": customer_id,
            "title": title,
            "due_at": due.astimezone().astimezone(UTC).isoformat(timespec="seconds"),
            "remind_at": due.astimezone().astimezone(UTC).isoformat(timespec="seconds"),
            "status": "open",
            "priority": "normal",
            "assignee_id": session.user.id,
        }
        if activity_id:
            task["activity_id"] = activity_id
        task_id = store.collection("tasks").insert(task).id
    patch: dict[str, Any] = {}
    if occurred_at:
        patch["last_contacted_at"] = occurred_at
    if day:
        patch["next_follow_up"] = day
    if patch and store.collection("customers").get(customer_id) is not None:
        store.collection("customers").update(customer_id, patch)
    return task_id


class LogActivityViewModel(Observable):
    def __init__(self, session: Session, customer_id: str, kind: str = "call") -> None:
        super().__init__()
        if kind not in ACTIVITY_TYPES:
            raise ValueError(kind)
        self.session = session
        self.customer_id = customer_id
        self.kind = kind
        customer = session.store.collection("customers").get(customer_id)
        self.customer_name = str(customer.fields.get("name", "")) if customer else ""
        now = session.now().astimezone()
        self.day = now.strftime("%Y-%m-%d")
        self.clock = now.strftime("%H:%M")
        self.duration = ""
        self.subject = ""
        self.contact_id = ""
        self.outcome = "positive" if kind != "note" else ""
        self.notes = ""
        self.next_follow_up = ""
        self.errors: dict[str, str] = {}
        self.message = ""
        self.activity_id: str | None = None
        self.task_id: str | None = None

    @property
    def title(self) -> str:
        tr = self.session.tr
        return tr("activity.log", kind=tr.choice("activity", self.kind))

    @property
    def type_choices(self) -> list[tuple[str, str]]:
        tr = self.session.tr
        return [(k, tr.choice("activity", k)) for k in ACTIVITY_TYPES if k != "visit"]

    @property
    def outcome_choices(self) -> list[tuple[str, str]]:
        return [("", "—")] + [(o, self.session.tr.choice("outcome", o)) for o in OUTCOMES]

    def contact_choices(self) -> list[tuple[str, str]]:
        contacts = self.session.store.collection("contacts").query(
            where={"customer_id": self.customer_id}, order_by="name"
        )
        return [("", "—")] + [(c.id, str(c.fields.get("name") or "")) for c in contacts]

    def save(self) -> bool:
        tr = self.session.tr
        self.errors = {}
        try:
            occurred_at = local_to_utc_iso(self.day, self.clock)
        except ValueError:
            self.errors["occurred_at"] = tr("visit.err.time")
            occurred_at = ""
        duration: int | None = None
        if self.duration.strip():
            try:
                duration = int(self.duration.strip())
            except ValueError:
                self.errors["duration_minutes"] = tr(
                    "err.not_a_number", label=tr.field_label("activities", "duration_minutes")
                )
        activity: dict[str, Any] = {
            "customer_id": self.customer_id,
            "type": self.kind,
            "occurred_at": occurred_at,
            "duration_minutes": duration,
            "subject": self.subject.strip() or None,
            "contact_id": self.contact_id or None,
            "outcome": self.outcome or None,
            "notes": self.notes.strip() or None,
            "next_follow_up": self.next_follow_up.strip() or None,
            "author_id": self.session.user.id,
        }
        activity = {k: v for k, v in activity.items() if v is not None and v != ""}
        for field, message in messages_by_field(
            tr, "activities", CRM_SCHEMA["activities"].validate(activity, partial=False)
        ).items():
            if not (field == "occurred_at" and "occurred_at" in self.errors):
                self.errors.setdefault(field, message)
        if not self.notes.strip() and not self.subject.strip() and self.kind == "note":
            self.errors["notes"] = tr("err.required", label=tr.field_label("activities", "notes"))
        if self.errors:
            self.message = tr("customers.fix")
            self.notify()
            return False
        try:
            record = self.session.store.collection("activities").insert(activity)
        except ValidationFailed as exc:
            self.errors = messages_by_field(tr, "activities", exc.errors)
            self.notify()
            return False
        self.activity_id = record.id
        self.task_id = follow_up(
            self.session,
            self.customer_id,
            str(activity.get("next_follow_up") or ""),
            tr("visit.task_title", name=self.customer_name),
            activity_id=record.id,
            occurred_at=occurred_at,
        )
        self.message = tr("activity.saved")
        self.notify()
        return True
