"""Lead conversion (线索转化): the records one conversion writes, for device and server.

Converting a lead is **one group** of writes (``Mutation.group``, all or nothing):

1. ``customers`` upsert — a new customer built from the lead (skipped when converting
   into an existing customer): ``name`` = the lead's company, or its name when it has
   none (``kind`` company/person); ``company``, ``phone``, ``email``, ``source``,
   ``industry``, ``city`` copied; ``status`` ``potential`` unless given;
2. ``contacts`` upsert — the lead's person on that customer: ``name``, ``title``,
   ``phone``, ``email``, ``is_primary`` true (optional: ``contact_id=None`` skips it);
3. ``opportunities`` upsert — optional (``opportunity`` given): the deal with
   ``customer_id``, ``lead_id``, the lead's ``campaign_id``, ``status`` ``open``; the
   caller gives at least ``stage_id`` (and usually ``name``, ``amount``);
4. ``leads`` upsert — ``status`` ``converted``, ``converted_customer_id``,
   ``converted_contact_id``, ``converted_opportunity_id``, ``converted_at``.

The server checks the group as a whole: the lead's converted links must name records
that exist after the group (the customer in the writer's scope, the contact and the
opportunity on that customer), a converted lead cannot be converted again, and a new
customer that looks like an existing one is refused with ``possible_duplicate`` unless
its mutation carries ``override: ["possible_duplicate"]`` — the user then chooses to
create it anyway or to convert into the existing customer (``existing_customer_id``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

CONVERTED = "converted"
LEADS, CUSTOMERS, CONTACTS, OPPORTUNITIES = "leads", "customers", "contacts", "opportunities"
#: Lead fields a conversion writes (the server recognises a conversion by them).
CONVERSION_LINKS = ("converted_customer_id", "converted_contact_id", "converted_opportunity_id")


@dataclass(frozen=True, slots=True)
class PlannedWrite:
    """One upsert of a conversion: send it as a ``Mutation`` of the conversion's group."""

    collection: str
    record_id: str
    fields: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ConversionPlan:
    customer_id: str
    contact_id: str | None
    opportunity_id: str | None
    writes: list[PlannedWrite] = field(default_factory=list)
    #: True when the lead converts into a customer that already exists.
    existing_customer: bool = False


def _pick(source: Mapping[str, Any], *names: str) -> dict[str, Any]:
    return {n: source[n] for n in names if source.get(n) not in (None, "")}


def customer_fields_from(lead: Mapping[str, Any]) -> dict[str, Any]:
    """The new customer's fields built from a lead (before the caller's overrides)."""
    company = lead.get("company")
    fields = _pick(lead, "company", "phone", "email", "source", "industry", "city")
    fields["name"] = company if isinstance(company, str) and company.strip() else lead.get("name")
    fields["kind"] = "company" if "company" in fields else "person"
    fields["status"] = "potential"
    return fields


def plan_conversion(
    lead_id: str,
    lead: Mapping[str, Any],
    *,
    customer_id: str,
    converted_at: str,
    contact_id: str | None = None,
    opportunity_id: str | None = None,
    customer: Mapping[str, Any] | None = None,
    opportunity: Mapping[str, Any] | None = None,
    existing_customer: bool = False,
) -> ConversionPlan:
    """The writes converting ``lead`` (its fields) — see the module docstring.

    ``customer`` overrides fields of the new customer; ``existing_customer=True``
    converts into the customer ``customer_id`` (no customer write). ``contact_id`` and
    ``opportunity_id`` are the new records' ids (``None``: not created); an
    ``opportunity_id`` needs ``opportunity`` fields with at least ``stage_id``.
    Raises ``ValueError`` for a lead already converted or an opportunity without fields.
    """
    if lead.get("status") == CONVERTED:
        raise ValueError("the lead is already converted")
    if opportunity_id is not None and not (opportunity and opportunity.get("stage_id")):
        raise ValueError("an opportunity needs at least a stage_id")
    writes: list[PlannedWrite] = []
    if not existing_customer:
        fields = customer_fields_from(lead) | dict(customer or {})
        writes.append(PlannedWrite(CUSTOMERS, customer_id, fields))
    if contact_id is not None:
        contact = _pick(lead, "name", "title", "phone", "email")
        contact |= {"customer_id": customer_id, "is_primary": not existing_customer}
        writes.append(PlannedWrite(CONTACTS, contact_id, contact))
    if opportunity_id is not None:
        deal = {"name": lead.get("company") or lead.get("name"), "status": "open"}
        deal |= _pick(lead, "campaign_id")
        deal |= dict(opportunity or {})
        deal |= {"customer_id": customer_id, "lead_id": lead_id}
        writes.append(PlannedWrite(OPPORTUNITIES, opportunity_id, deal))
    links: dict[str, Any] = {
        "status": CONVERTED,
        "converted_customer_id": customer_id,
        "converted_at": converted_at,
    }
    if contact_id is not None:
        links["converted_contact_id"] = contact_id
    if opportunity_id is not None:
        links["converted_opportunity_id"] = opportunity_id
    writes.append(PlannedWrite(LEADS, lead_id, links))
    return ConversionPlan(customer_id, contact_id, opportunity_id, writes, existing_customer)


__all__ = [
    "CONVERSION_LINKS",
    "CONVERTED",
    "ConversionPlan",
    "PlannedWrite",
    "customer_fields_from",
    "plan_conversion",
]
