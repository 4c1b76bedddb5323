"""Phone numbers, e-mail and addresses as things a rep taps: call, SMS, mail, navigate.

Every phone field of a record is offered, mobile first (a rep on the road reaches people
on their mobile), each as a ``tel:`` URI the phone's dialer opens. An address becomes a
``geo:`` URI (Android hands it to whichever map app the rep uses — no map inside this
app, and none needed offline: the map app has its own cache) or, on a desktop, a web
map search. The app never places a call itself: the dialer does, so no CALL_PHONE
permission is needed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

#: Phone fields per collection, in the order they are offered (mobile first).
PHONE_FIELDS: dict[str, tuple[str, ...]] = {
    "customers": ("mobile", "phone"),
    "contacts": ("phone",),
    "leads": ("phone",),
}
_DIAL_CHARS = re.compile(r"[^0-9+*#,;]")


@dataclass(frozen=True, slots=True)
class PhoneNumber:
    field: str
    number: str

    @property
    def dial(self) -> str:
        return dial_uri(self.number)

    @property
    def sms(self) -> str:
        return sms_uri(self.number)


def phone_numbers(collection: str, fields: Mapping[str, Any]) -> list[PhoneNumber]:
    """The record's phone numbers, mobile first, without blanks or repeats."""
    out: list[PhoneNumber] = []
    seen: set[str] = set()
    for name in PHONE_FIELDS.get(collection, ("mobile", "phone")):
        value = fields.get(name)
        if isinstance(value, str) and value.strip():
            key = dial_digits(value)
            if key and key not in seen:
                seen.add(key)
                out.append(PhoneNumber(name, value.strip()))
    return out


def dial_digits(number: str) -> str:
    """``+86 138-0013 8000`` → ``+8613800138000`` (what a dialer accepts)."""
    return _DIAL_CHARS.sub("", number)


def dial_uri(number: str) -> str:
    return f"tel:{dial_digits(number)}"


def sms_uri(number: str) -> str:
    return f"sms:{dial_digits(number)}"


def mail_uri(address: str, subject: str = "") -> str:
    uri = f"mailto:{address.strip()}"
    return f"{uri}?subject={quote(subject)}" if subject else uri


def navigate_uri(
    address: str | None, location: Mapping[str, Any] | None = None, *, android: bool = True
) -> str | None:
    """Where a map app should take the rep: the record's geo point, else its address."""
    lat = location.get("lat") if isinstance(location, Mapping) else None
    lon = location.get("lon") if isinstance(location, Mapping) else None
    text = (address or "").strip()
    if android:
        if isinstance(lat, int | float) and isinstance(lon, int | float):
            label = f"({quote(text)})" if text else ""
            return f"geo:{lat},{lon}?q={lat},{lon}{label}"
        return f"geo:0,0?q={quote(text)}" if text else None
    if isinstance(lat, int | float) and isinstance(lon, int | float):
        return f"https://www.openstreetmap.org/?mlat={lat}&mlon={lon}#map=17/{lat}/{lon}"
    return f"https://www.openstreetmap.org/search?query={quote(text)}" if text else None


class LauncherPort(Protocol):
    """Hands a URI to the platform (dialer, SMS, mail, maps); ``False`` if nothing took it."""

    def open(self, uri: str) -> bool: ...


class RecordingLauncher:
    """Tests and screenshots: remembers what would have been opened."""

    def __init__(self) -> None:
        self.opened: list[str] = []

    def open(self, uri: str) -> bool:
        self.opened.append(uri)
        return True
