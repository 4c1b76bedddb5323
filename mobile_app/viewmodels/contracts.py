"""Contracts: the rep's contracts, and when each one's renewal reminder starts.

Each contract carries its own ``remind_days_before`` (how many days before ``ends_on``
the renewal conversation should start; 30 when a contract does not say). A contract is
*due for renewal* from ``ends_on - remind_days_before`` until it ends, if it is signed
or active. Today lists those; the contract list shows every contract with its state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from .base import Observable, Session, parse_date
from .customers import money
from .fields import spec_for, to_text

DEFAULT_REMIND_DAYS = 30
LIVE_STATUSES = ("signed", "active")


def remind_from(fields: Any) -> date | None:
    """The first day of the renewal reminder, or ``None`` without an end date."""
    ends = parse_date(fields.get("ends_on"))
    if ends is None:
        return None
    days = fields.get("remind_days_before")
    days = days if isinstance(days, int) and not isinstance(days, bool) else DEFAULT_REMIND_DAYS
    return ends - timedelta(days=days)


def renewal_due(fields: Any, today: date) -> bool:
    start = remind_from(fields)
    ends = parse_date(fields.get("ends_on"))
    return bool(start and ends and start <= today <= ends and fields.get("status") in LIVE_STATUSES)


@dataclass(frozen=True, slots=True)
class ContractRow:
    id: str
    customer_id: str
    title: str
    subtitle: str
    due: bool
    pending: bool


class ContractListViewModel(Observable):
    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session
        self.rows: list[ContractRow] = []

    def refresh(self) -> None:
        today = self.session.today()
        names = {
            r.id: str(r.fields.get("name") or "")
            for r in self.session.store.collection("customers").all()
        }
        records = list(self.session.store.collection("contracts").query(order_by="ends_on"))
        records.sort(key=lambda r: not renewal_due(r.fields, today))
        self.rows = [
            ContractRow(
                r.id,
                str(r.fields.get("customer_id") or ""),
                f"{r.fields.get('number', '')} {names.get(str(r.fields.get('customer_id')), '')}".strip(),
                contract_line(self.session, r.fields, today),
                renewal_due(r.fields, today),
                r.pending,
            )
            for r in records
        ]
        self.notify()


def contract_line(session: Session, f: Any, today: date) -> str:
    tr = session.tr
    bits = [
        tr.choice("contract_status", f.get("status")),
        money(f.get("amount"), f.get("currency")),
    ]
    ends = parse_date(f.get("ends_on"))
    if ends is not None:
        left = (ends - today).days
        bits.append(
            tr("contracts.ends_in", date=ends.isoformat(), n=left)
            if left >= 0
            else tr("contracts.ended", date=ends.isoformat())
        )
        start = remind_from(f)
        if start is not None and f.get("status") in LIVE_STATUSES and left >= 0:
            bits.append(
                tr("contracts.renew_now")
                if start <= today
                else tr("contracts.remind_from", date=start.isoformat())
            )
    return " · ".join(b for b in bits if b)


def contract_details(session: Session, contract_id: str) -> tuple[str, list[tuple[str, str]]]:
    """A contract's title and its fields as (label, text) lines, for the detail screen."""
    record = session.store.collection("contracts").get(contract_id)
    if record is None:
        return session.tr("customers.not_found"), []
    tr = session.tr
    f = record.fields
    lines: list[tuple[str, str]] = []
    for name in (
        "status",
        "amount",
        "signed_on",
        "starts_on",
        "ends_on",
        "remind_days_before",
        "notes",
    ):
        value = f.get(name)
        if value is None or value == "":
            continue
        if name == "status":
            text = tr.choice("contract_status", value)
        elif name == "amount":
            text = money(value, f.get("currency"))
        else:
            text = to_text(spec_for("contracts", name), value)
        lines.append((tr.field_label("contracts", name), text))
    start = remind_from(f)
    if start is not None:
        lines.append((tr("contracts.reminder"), contract_line(session, f, session.today())))
    title = f"{f.get('number', '')} {f.get('title') or ''}".strip()
    return title, lines
