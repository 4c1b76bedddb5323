"""Is this person already on the phone? Checked before a customer or lead is created.

The same shop owner arrives as a lead from a trade fair and as a customer a colleague
typed last month. Before a new customer or lead is written, the form looks through the
customers and leads on this phone for the same phone number (digits only, the last 11
compared, so ``+86 138 0013 8000`` equals ``13800138000``), the same e-mail (case-folded)
or the same name (case and spaces ignored). A match is a warning with the matches' names,
not a refusal: the rep saves anyway with a second tap, or opens the existing record.
The server runs its own check on push (``possible_duplicate``); this one works offline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .base import Session

_NOT_DIGIT = re.compile(r"\D")
_SPACES = re.compile(r"\s+")
#: Collections searched and the phone fields of each.
_SEARCHED = {"customers": ("phone", "mobile"), "leads": ("phone",), "contacts": ("phone",)}


@dataclass(frozen=True, slots=True)
class DuplicateHit:
    collection: str
    id: str
    name: str
    reason: str  # "phone" | "email" | "name"


def phone_key(value: object) -> str:
    digits = _NOT_DIGIT.sub("", value) if isinstance(value, str) else ""
    return digits[-11:] if len(digits) >= 7 else ""


def name_key(value: object) -> str:
    return _SPACES.sub("", value).casefold() if isinstance(value, str) else ""


def email_key(value: object) -> str:
    return value.strip().casefold() if isinstance(value, str) and "@" in value else ""


def find_duplicates(
    session: Session,
    *,
    name: str = "",
    phones: tuple[str, ...] = (),
    email: str = "",
    exclude: tuple[str, ...] = (),
) -> list[DuplicateHit]:
    """Customers, leads and contacts on this phone that look like the one being created."""
    want_phones = {k for k in (phone_key(p) for p in phones) if k}
    want_email = email_key(email)
    want_name = name_key(name)
    hits: list[DuplicateHit] = []
    for collection, phone_fields in _SEARCHED.items():
        for record in session.store.collection(collection).query():
            if record.id in exclude:
                continue
            f = record.fields
            reason = ""
            if want_phones and want_phones & {phone_key(f.get(n)) for n in phone_fields}:
                reason = "phone"
            elif want_email and email_key(f.get("email")) == want_email:
                reason = "email"
            elif want_name and collection != "contacts" and name_key(f.get("name")) == want_name:
                reason = "name"
            if reason:
                hits.append(DuplicateHit(collection, record.id, str(f.get("name") or ""), reason))
    return hits


def describe(session: Session, hits: list[DuplicateHit]) -> str:
    """ "Same phone as customer 张三; same name as lead 张三" in the UI language."""
    tr = session.tr
    parts = [
        tr(f"dup.{hit.reason}", what=tr.entity_label(hit.collection), name=hit.name)
        for hit in hits[:3]
    ]
    more = len(hits) - 3
    if more > 0:
        parts.append(tr("dup.more", n=more))
    return tr("dup.warning", matches="; ".join(parts))
