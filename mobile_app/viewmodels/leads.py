"""Leads (线索): the list, a lead's form, qualify, and conversion — offline.

**Conversion** turns a lead into a customer, its first contact and an opportunity, and
marks the lead converted with links to what it became. The writes are those of
:func:`sync_protocol.leads.plan_conversion` (the plan the server's conversion rules
check) and go into one mutation group (``with store.group():``), so the server applies
all of them or none:
a rep who converts a lead in a basement never ends up with a customer whose lead still
looks open, or a deal without its customer. If a customer with the same phone, e-mail
or name is already on the phone, the rep may attach the contact and deal to it instead
of creating a second customer.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sync_protocol import CRM_SCHEMA, FieldError
from sync_protocol.leads import plan_conversion

from .base import Observable, Session
from .duplicates import DuplicateHit, find_duplicates
from .fields import NotConvertible, messages_by_field, spec_for, to_value
from .forms import RecordForm
from .ports import RecordPort

LEAD_STATUSES = CRM_SCHEMA["leads"].fields["status"].choices
OPEN_STATUSES = ("new", "contacted", "qualified")


@contextlib.contextmanager
def write_group(session: Session) -> Iterator[None]:
    """Every write inside shares one mutation group (the SDK's ``store.group()``): the
    server applies all of them or none."""
    with session.store.group():
        yield


@dataclass(frozen=True, slots=True)
class LeadRow:
    id: str
    name: str
    subtitle: str
    status: str
    status_label: str
    pending: bool


class LeadListViewModel(Observable):
    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session
        self.query = ""
        self.status: str | None = "open"
        self.rows: list[LeadRow] = []

    @property
    def status_choices(self) -> list[tuple[str, str]]:
        tr = self.session.tr
        return [("open", tr("leads.open")), ("", tr("customers.all"))] + [
            (s, tr.choice("lead_status", s)) for s in LEAD_STATUSES
        ]

    def set_filter(self, status: str | None) -> None:
        self.status = status or None
        self.refresh()

    def refresh(self) -> None:
        tr = self.session.tr
        status = self.status
        records = self.session.store.collection("leads").query(
            where=(lambda r: r.fields.get("status") in OPEN_STATUSES)
            if status == "open"
            else ({"status": status} if status else None),
            search=self.query.strip() or None,
            order_by="name",
        )
        self.rows = [
            LeadRow(
                r.id,
                str(r.fields.get("name") or ""),
                " · ".join(
                    str(r.fields[k]) for k in ("company", "phone", "email") if r.fields.get(k)
                ),
                str(r.fields.get("status") or ""),
                tr.choice("lead_status", r.fields.get("status")),
                r.pending,
            )
            for r in records
        ]
        self.notify()


class LeadFormViewModel(RecordForm):
    collection = "leads"
    FIELDS = ("name", "company", "phone", "email", "source", "status", "notes")
    CHOICE_FIELDS = ("source", "status")
    CHECK_DUPLICATES = True

    def __init__(self, session: Session, lead_id: str | None = None, **defaults: str) -> None:
        super().__init__(session, lead_id, **({"status": "new"} | defaults))

    def choices(self, name: str) -> list[tuple[str, str]]:
        options = super().choices(name)
        if name == "status":  # converting is its own action, never a status picked here
            return [(c, label) for c, label in options if c != "converted"]
        return options


def set_lead_status(session: Session, lead_id: str, status: str) -> None:
    """Qualify / mark contacted / disqualify (conversion goes through :class:`LeadConvert`)."""
    if status not in LEAD_STATUSES or status == "converted":
        raise ValueError(status)
    session.store.collection("leads").update(lead_id, {"status": status})


class LeadConvertViewModel(Observable):
    """Convert a lead: customer (new, or one already on the phone) + contact + deal."""

    def __init__(self, session: Session, lead_id: str) -> None:
        super().__init__()
        self.session = session
        self.lead_id = lead_id
        lead = session.store.collection("leads").get(lead_id)
        self.lead: RecordPort | None = lead
        f = dict(lead.fields) if lead else {}
        self.customer_name = str(f.get("company") or f.get("name") or "")
        self.contact_name = str(f.get("name") or "")
        self.deal_name = ""
        self.amount = ""
        self.close_date = ""
        self.stages = _open_stages(session)
        self.stage_id = self.stages[0][0] if self.stages else ""
        self.make_deal = True
        #: Customers already on the phone that look like this lead (attach instead).
        self.matches: list[DuplicateHit] = [
            h
            for h in find_duplicates(
                session,
                name=self.customer_name,
                phones=tuple(p for p in (str(f.get("phone") or ""),) if p),
                email=str(f.get("email") or ""),
            )
            if h.collection == "customers"
        ]
        self.existing_customer_id = ""
        self.errors: dict[str, str] = {}
        self.message = ""
        self.result: dict[str, str] = {}

    @property
    def converted(self) -> bool:
        return bool(self.lead and self.lead.fields.get("status") == "converted")

    def _check(self) -> tuple[dict[str, Any], list[FieldError]]:
        problems: list[FieldError] = []
        if not self.existing_customer_id and not self.customer_name.strip():
            problems.append(FieldError(field="name", code="required", message="required"))
        deal: dict[str, Any] = {}
        if self.make_deal:
            for name, text in (("amount", self.amount), ("expected_close_date", self.close_date)):
                try:
                    value = to_value(spec_for("opportunities", name), text)
                except NotConvertible as exc:
                    problems.append(FieldError(field=name, code=exc.code, message=exc.code))
                else:
                    if value is not None:
                        deal[name] = value
            if not self.stage_id:
                problems.append(FieldError(field="stage_id", code="required", message="required"))
            problems += CRM_SCHEMA["opportunities"].validate(deal, partial=True)
        return deal, problems

    def convert(self) -> bool:
        """Write the conversion as one group; ``result`` holds the new records' ids."""
        tr = self.session.tr
        lead = self.session.store.collection("leads").get(self.lead_id)
        if lead is None or lead.fields.get("status") == "converted":
            self.message = tr("leads.already_converted")
            self.notify()
            return False
        deal, problems = self._check()
        if problems:
            self.errors = messages_by_field(tr, "opportunities", problems)
            if "name" in self.errors:
                self.errors["name"] = tr("err.required", label=tr.entity_label("customers"))
            self.message = tr("customers.fix")
            self.notify()
            return False
        self.result = self._write(lead, deal)
        self.lead = self.session.store.collection("leads").get(self.lead_id)
        self.errors = {}
        self.message = tr("leads.converted")
        self.notify()
        return True

    def _write(self, lead: RecordPort, deal: dict[str, Any]) -> dict[str, str]:
        """The writes of :func:`sync_protocol.leads.plan_conversion` — the same plan the
        server's conversion rules check and the manager API applies — as one group."""
        f = dict(lead.fields)
        existing = bool(self.existing_customer_id)
        opportunity: dict[str, Any] | None = None
        if self.make_deal:
            opportunity = {"stage_id": self.stage_id, "currency": "CNY", **deal}
            if self.deal_name.strip():
                opportunity["name"] = self.deal_name.strip()
        plan = plan_conversion(
            lead.id,
            f,
            customer_id=self.existing_customer_id or new_id(),
            converted_at=self.session.now_iso(),
            contact_id=new_id(),
            opportunity_id=new_id() if opportunity is not None else None,
            customer={"name": self.customer_name.strip()} if not existing else None,
            opportunity=opportunity,
            existing_customer=existing,
        )
        contact_name = self.contact_name.strip()
        store = self.session.store
        with write_group(self.session):
            for w in plan.writes:
                fields = dict(w.fields)
                if w.collection == "contacts" and contact_name:
                    fields["name"] = contact_name
                if w.collection == "leads":
                    store.collection("leads").update(w.record_id, fields)
                else:
                    store.collection(w.collection).insert(fields, id=w.record_id)
        out = {"customer": plan.customer_id, "contact": str(plan.contact_id)}
        if plan.opportunity_id is not None:
            out["opportunity"] = plan.opportunity_id
        return out


def new_id() -> str:
    """A new record id for a write made on this phone (the server keeps the client's)."""
    return f"m-{uuid.uuid4().hex}"


def _open_stages(session: Session) -> list[tuple[str, str]]:
    zh = session.tr.language == "zh"
    rows = [
        r
        for r in session.store.collection("pipeline_stages").query(order_by="position")
        if not r.fields.get("is_won") and not r.fields.get("is_lost")
    ]
    return [
        (r.id, str((r.fields.get("name_zh") if zh else None) or r.fields.get("name") or r.id))
        for r in rows
    ]
