"""Log a visit: check-in time and place, outcome, notes, next follow-up.

Saving writes three things locally (no signal needed): an append-only ``activities``
record of type ``visit`` (append-only, so it never conflicts), an open follow-up task
due on the next follow-up date, and the customer's ``next_follow_up`` and
``last_contacted_at`` (``max`` merge: the latest contact wins whoever syncs first).

Location comes from a :class:`LocationProvider`; on phones that is plyer's GPS (after
the runtime permission). Without a fix — no GPS, permission refused, indoors — the form
is map-free: "at the customer's address" takes the customer's stored location (and its
address as the place), or the rep types the place in words (kept in the visit's notes as
``地点：…``) — or ``lat, lon`` for those who have them.

Photos picked on the form (camera or file) are checked at once — a photo over the size
limit is refused with a message before the visit is saved — and stored through the
SDK's attachment API when the visit is saved, bound to the new ``activities`` record
with their capture time and the check-in location (see :mod:`.photos`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sync_protocol import CRM_SCHEMA, FieldError, ValidationFailed

from .activities import follow_up
from .base import Observable, Session, local_datetime_text
from .fields import NotConvertible, messages_by_field, parse_geo
from .photos import (
    StagedPhoto,
    attachments_of,
    human_size,
    photo_location,
    stage_photo,
    store_photo,
)

OUTCOMES = CRM_SCHEMA["activities"].fields["outcome"].choices


@dataclass(frozen=True, slots=True)
class GeoFix:
    lat: float
    lon: float
    accuracy_m: float | None = None

    def as_field(self, at: str | None = None) -> dict[str, Any]:
        value: dict[str, Any] = {"lat": self.lat, "lon": self.lon}
        if self.accuracy_m is not None:
            value["accuracy_m"] = self.accuracy_m
        if at:
            value["at"] = at
        return value


class LocationProvider(Protocol):
    """Where the phone is now, or ``None`` when the platform cannot tell."""

    @property
    def available(self) -> bool: ...

    def current(self) -> GeoFix | None: ...


class NoLocation:
    """Desktop and tests: no GPS; the form offers manual entry."""

    available = False

    def current(self) -> GeoFix | None:
        return None


class LogVisitViewModel(Observable):
    def __init__(
        self, session: Session, customer_id: str, location: LocationProvider | None = None
    ) -> None:
        super().__init__()
        self.session = session
        self.customer_id = customer_id
        self.location_provider: LocationProvider = location or NoLocation()
        customer = session.store.collection("customers").get(customer_id)
        self.customer_name = str(customer.fields.get("name", "")) if customer else ""
        cf = customer.fields if customer else {}
        self.customer_address = " ".join(str(cf[k]) for k in ("city", "address") if cf.get(k))
        location = cf.get("location")
        self.customer_location = location if isinstance(location, dict) else None
        self.at_customer = False
        self.check_in = session.now().astimezone().strftime("%Y-%m-%d %H:%M")
        self.location_text = ""
        self.gps_fix: GeoFix | None = None
        self.location_note = ""
        self.outcome = "positive"
        self.notes = ""
        self.next_follow_up = ""
        self.errors: dict[str, str] = {}
        self.message = ""
        self.activity_id: str | None = None
        self.task_id: str | None = None
        self.photos: list[StagedPhoto] = []
        self.photo_error = ""
        self.photo_ids: list[str] = []

    # -- photos ----------------------------------------------------------------------
    @property
    def photos_available(self) -> bool:
        return attachments_of(self.session) is not None

    def add_photo(self, path: str, *, temporary: bool = False) -> bool:
        """Pick a photo for this visit (checked now, stored when the visit is saved).

        ``temporary``: the camera wrote the file for us; it is deleted once stored."""
        staged = stage_photo(self.session, attachments_of(self.session), path, temporary=temporary)
        if isinstance(staged, str):
            self.photo_error = staged
            self.notify()
            return False
        self.photo_error = ""
        self.photos.append(staged)
        self.notify()
        return True

    def remove_photo(self, index: int) -> None:
        if 0 <= index < len(self.photos):
            self.photos.pop(index).forget()
            self.notify()

    def photo_lines(self) -> list[tuple[str, str]]:
        """(name, "size · attaches when you save") for each picked photo."""
        tr = self.session.tr
        return [(p.name, tr("photos.staged", size=human_size(p.size))) for p in self.photos]

    def _store_photos(self, record_id: str, check_in: dict[str, Any] | None) -> list[str]:
        """Store the picked photos for the saved visit; the messages of those that failed."""
        attachments = attachments_of(self.session)
        if attachments is None or not self.photos:
            return []
        location = photo_location(check_in)
        problems: list[str] = []
        for photo in self.photos:
            stored = store_photo(self.session, attachments, record_id, photo, location)
            if isinstance(stored, str):
                problems.append(stored)
            else:
                self.photo_ids.append(stored.id)
        self.photos = []
        return problems

    @property
    def outcome_choices(self) -> list[tuple[str, str]]:
        return [(o, self.session.tr.choice("outcome", o)) for o in OUTCOMES]

    def stamp_now(self) -> None:
        self.check_in = self.session.now().astimezone().strftime("%Y-%m-%d %H:%M")
        self.notify()

    def locate(self) -> bool:
        """Ask the GPS; on failure switch to manual entry with a note saying so."""
        tr = self.session.tr
        fix = self.location_provider.current() if self.location_provider.available else None
        if fix is None:
            self.gps_fix = None
            self.location_note = tr("visit.gps_unavailable")
            self.notify()
            return False
        self.gps_fix = fix
        self.location_text = f"{fix.lat:.6f}, {fix.lon:.6f}"
        acc = f"{fix.accuracy_m:.0f}" if fix.accuracy_m is not None else "?"
        self.location_note = tr("visit.gps_ok", acc=acc)
        self.notify()
        return True

    def use_customer_address(self) -> None:
        """Map-free fallback: the visit was at the customer's (stored) address."""
        self.at_customer = True
        self.gps_fix = None
        self.location_text = self.customer_address
        self.location_note = self.session.tr("visit.at_customer")
        self.notify()

    def _occurred_at(self) -> str:
        text = self.check_in.strip().replace("T", " ")
        when = datetime.strptime(text[:16], "%Y-%m-%d %H:%M")  # local time as typed
        return when.astimezone().astimezone(UTC).isoformat(timespec="seconds")

    def save(self) -> bool:
        tr = self.session.tr
        self.errors = {}
        try:
            occurred_at = self._occurred_at()
        except ValueError:
            self.errors["occurred_at"] = tr("visit.err.time")
            occurred_at = ""
        check_in: dict[str, Any] | None = None
        place = ""
        if self.location_text.strip():
            try:
                geo = parse_geo(self.location_text)
            except NotConvertible:
                place = self.location_text.strip()  # a place in words: kept in the notes
                if self.at_customer and self.customer_location:
                    check_in = {
                        k: v for k, v in self.customer_location.items() if k in ("lat", "lon")
                    }
            else:
                fix = self.gps_fix
                if fix and abs(fix.lat - geo["lat"]) < 1e-6 and abs(fix.lon - geo["lon"]) < 1e-6:
                    check_in = fix.as_field(occurred_at or None)
                else:
                    check_in = geo
        activity: dict[str, Any] = {
            "customer_id": self.customer_id,
            "type": "visit",
            "occurred_at": occurred_at,
            "subject": tr("visit.subject", name=self.customer_name),
            "outcome": self.outcome or None,
            "notes": "\n".join(
                x
                for x in (self.notes.strip(), f"{tr('visit.place_note')}{place}" if place else "")
                if x
            )
            or None,
            "check_in": check_in,
            "next_follow_up": self.next_follow_up.strip() or None,
            "author_id": self.session.user.id,
        }
        activity = {k: v for k, v in activity.items() if v is not None}
        schema_errors = CRM_SCHEMA["activities"].validate(activity, partial=False)
        self.errors.update(
            {
                k: v
                for k, v in messages_by_field(tr, "activities", schema_errors).items()
                if k not in self.errors and not (k == "occurred_at" and not occurred_at)
            }
        )
        if self.errors:
            self.message = tr("customers.fix")
            self.notify()
            return False
        store = self.session.store
        try:
            record = store.collection("activities").insert(activity)
        except ValidationFailed as exc:
            self._fail(exc.errors)
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
        problems = self._store_photos(record.id, check_in)
        self.photo_error = "\n".join(problems)
        self.message = (
            tr("visit.photos_saved", n=len(self.photo_ids)) if self.photo_ids else tr("visit.saved")
        )
        self.notify()
        return True

    def _fail(self, errors: list[FieldError]) -> None:
        self.errors = messages_by_field(self.session.tr, "activities", errors)
        self.message = self.session.tr("customers.fix")
        self.notify()


def visit_summary(session: Session, activity_id: str) -> tuple[str, list[str]]:
    """A logged visit (any activity) as a title and a few lines, for the visit screen."""
    tr = session.tr
    record = session.store.collection("activities").get(activity_id)
    if record is None:
        return tr("visit.open"), []
    f = record.fields
    lines = [
        " · ".join(
            x
            for x in (
                local_datetime_text(f.get("occurred_at")),
                tr.choice("activity", f.get("type")),
                tr.choice("outcome", f.get("outcome")),
            )
            if x
        )
    ]
    check_in = f.get("check_in")
    if isinstance(check_in, dict) and "lat" in check_in and "lon" in check_in:
        lines.append(f"{tr('visit.location')}: {check_in['lat']}, {check_in['lon']}")
    if f.get("notes"):
        lines.append(str(f["notes"]))
    if f.get("next_follow_up"):
        lines.append(f"{tr('visit.next')}: {f['next_follow_up']}")
    return str(f.get("subject") or tr("visit.open")), lines
