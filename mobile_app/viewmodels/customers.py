"""Customers: the searchable list, one customer's whole picture, and the edit form.

The list is sorted by next follow-up (soonest and overdue first, customers without one
last), searched through the store's text search — which matches name, phone, company,
e-mail and the pinyin keys the app registers (``zs`` finds 张三) — and filtered by
status, tier and, for managers who see their team's customers, owner.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sync_protocol import CRM_SCHEMA

from .base import Observable, Session, local_datetime_text, parse_date
from .fields import spec_for, to_text
from .forms import RecordForm
from .photos import attachments_of
from .ports import RecordPort

#: How many rows the list renders at once (the rest are reached by searching).
PAGE = 200


@dataclass(frozen=True, slots=True)
class CustomerRow:
    id: str
    name: str
    subtitle: str
    status: str
    status_label: str
    tier_label: str
    follow_up: str
    overdue: bool
    pending: bool


def sort_key_follow_up(record: RecordPort) -> tuple[int, str, str]:
    """Soonest follow-up first; no follow-up last; then by name for a stable order."""
    due = record.fields.get("next_follow_up")
    name = str(record.fields.get("name") or "")
    if isinstance(due, str) and due:
        return (0, due, name)
    return (1, "", name)


class CustomerListViewModel(Observable):
    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session
        self.query = ""
        self.status: str | None = None
        self.tier: str | None = None
        self.owner: str | None = None
        self.rows: list[CustomerRow] = []
        self.total = 0
        self.matched = 0

    # -- filters -------------------------------------------------------------------
    @property
    def status_choices(self) -> list[tuple[str | None, str]]:
        tr = self.session.tr
        choices = CRM_SCHEMA["customers"].fields["status"].choices
        everything = f"{tr('customers.filter.status')}: {tr('customers.all')}"
        return [(None, everything)] + [(c, tr.choice("status", c)) for c in choices]

    @property
    def tier_choices(self) -> list[tuple[str | None, str]]:
        tr = self.session.tr
        choices = CRM_SCHEMA["customers"].fields["tier"].choices
        everything = f"{tr('customers.filter.tier')}: {tr('customers.all')}"
        return [(None, everything)] + [(c, tr.choice("tier", c)) for c in choices]

    @property
    def shows_owner_filter(self) -> bool:
        return self.session.user.is_manager

    @property
    def owner_choices(self) -> list[tuple[str | None, str]]:
        """Owners of the customers on this phone (a manager sees the team's)."""
        if not self.shows_owner_filter:
            return []
        owners = sorted(
            {
                str(r.fields.get("owner_id"))
                for r in self.session.store.collection("customers").query()
                if r.fields.get("owner_id")
            }
        )
        names = self.session.extras.get("user_names", {})
        tr = self.session.tr
        everything = f"{tr('customers.filter.owner')}: {tr('customers.all')}"
        return [(None, everything)] + [(o, names.get(o, o)) for o in owners]

    def set_query(self, text: str) -> None:
        self.query = text
        self.refresh()

    def set_filter(self, name: str, value: str | None) -> None:
        if name not in ("status", "tier", "owner"):
            raise ValueError(name)
        setattr(self, name, value or None)
        self.refresh()

    # -- data ------------------------------------------------------------------------
    def refresh(self) -> None:
        customers = self.session.store.collection("customers")
        where: dict[str, Any] = {}
        if self.status:
            where["status"] = self.status
        if self.tier:
            where["tier"] = self.tier
        if self.owner and self.shows_owner_filter:
            where["owner_id"] = self.owner
        search = self.query.strip() or None
        records = list(customers.query(where=where or None, search=search))
        records.sort(key=sort_key_follow_up)
        self.total = customers.count()
        self.matched = len(records)
        today = self.session.today()
        self.rows = [self._row(r, today) for r in records[:PAGE]]
        self.notify()

    def _row(self, record: RecordPort, today: date) -> CustomerRow:
        tr = self.session.tr
        f = record.fields
        due = parse_date(f.get("next_follow_up"))
        parts = [str(f[k]) for k in ("company", "phone") if f.get(k)]
        status = str(f.get("status") or "")
        return CustomerRow(
            id=record.id,
            name=str(f.get("name") or ""),
            subtitle=" · ".join(parts),
            status=status,
            status_label=tr.choice("status", status),
            tier_label=tr.choice("tier", f.get("tier")),
            follow_up=(
                tr("customers.follow_up", date=due.isoformat())
                if due
                else tr("customers.no_follow_up")
            ),
            overdue=bool(due and due < today),
            pending=record.pending,
        )

    @property
    def count_text(self) -> str:
        return self.session.tr("customers.count", shown=self.matched, total=self.total)


# ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DetailLine:
    """One line of a detail section: a title, a second line, and the record it opens."""

    id: str
    title: str
    subtitle: str
    pending: bool = False


class CustomerDetailViewModel(Observable):
    """Everything about one customer: fields, contacts, deals, timeline, contracts, tickets."""

    INFO_FIELDS = ("company", "mobile", "phone", "email", "address", "city", "industry")

    def __init__(self, session: Session, customer_id: str) -> None:
        super().__init__()
        self.session = session
        self.customer_id = customer_id
        self.record: RecordPort | None = None
        self.info: list[tuple[str, str]] = []
        self.contacts: list[DetailLine] = []
        self.opportunities: list[DetailLine] = []
        self.timeline: list[DetailLine] = []
        self.contracts: list[DetailLine] = []
        self.tickets: list[DetailLine] = []
        self.tasks: list[DetailLine] = []
        self.orders: list[DetailLine] = []

    @property
    def name(self) -> str:
        return str(self.record.fields.get("name", "")) if self.record else ""

    @property
    def headline(self) -> str:
        if not self.record:
            return self.session.tr("customers.not_found")
        tr = self.session.tr
        f = self.record.fields
        bits = [tr.choice("status", f.get("status")), tr.choice("tier", f.get("tier"))]
        due = f.get("next_follow_up")
        if due:
            bits.append(tr("customers.follow_up", date=due))
        return " · ".join(b for b in bits if b)

    def _children(self, collection: str, order_by: str | None = None) -> list[RecordPort]:
        rows = self.session.store.collection(collection).query(
            where={"customer_id": self.customer_id}
        )
        result = list(rows)
        if order_by:
            result.sort(key=lambda r: str(r.fields.get(order_by) or ""), reverse=True)
        return result

    def refresh(self) -> None:
        store = self.session.store
        tr = self.session.tr
        self.record = store.collection("customers").get(self.customer_id)
        if self.record is None:
            self.notify()
            return
        f = self.record.fields
        self.info = [
            (tr.field_label("customers", k), to_text(spec_for("customers", k), f.get(k)))
            for k in self.INFO_FIELDS
            if f.get(k)
        ]
        if f.get("notes"):
            self.info.append((tr.field_label("customers", "notes"), str(f["notes"])))
        self.contacts = self._contacts()
        self.opportunities = self._opportunities()
        self.timeline = self._timeline()
        self.contracts = self._contracts()
        self.tickets = self._tickets()
        self.tasks = self._tasks()
        self.orders = self._orders()
        self.notify()

    def _contacts(self) -> list[DetailLine]:
        return [
            DetailLine(
                r.id,
                str(r.fields.get("name") or ""),
                " · ".join(
                    str(r.fields[k]) for k in ("title", "phone", "email") if r.fields.get(k)
                ),
                r.pending,
            )
            for r in self._children("contacts")
        ]

    def _opportunities(self) -> list[DetailLine]:
        stages = stage_names(self.session)
        return [
            DetailLine(
                r.id,
                str(r.fields.get("name") or ""),
                " · ".join(
                    x
                    for x in (
                        stages.get(str(r.fields.get("stage_id")), ""),
                        money(r.fields.get("amount"), r.fields.get("currency")),
                        str(r.fields.get("expected_close_date") or ""),
                    )
                    if x
                ),
                r.pending,
            )
            for r in self._children("opportunities")
        ]

    def _timeline(self) -> list[DetailLine]:
        tr = self.session.tr
        return [
            DetailLine(
                r.id,
                f"{local_datetime_text(r.fields.get('occurred_at'))}  "
                f"{tr.choice('activity', r.fields.get('type'))}"
                + (
                    f" · {tr.choice('outcome', r.fields.get('outcome'))}"
                    if r.fields.get("outcome")
                    else ""
                ),
                self._with_photos(
                    r.id, str(r.fields.get("notes") or r.fields.get("subject") or "")
                ),
                r.pending,
            )
            for r in self._children("activities", order_by="occurred_at")
        ]

    def _contracts(self) -> list[DetailLine]:
        tr = self.session.tr
        return [
            DetailLine(
                r.id,
                f"{r.fields.get('number', '')} {r.fields.get('title') or ''}".strip(),
                " · ".join(
                    x
                    for x in (
                        tr.choice("contract_status", r.fields.get("status")),
                        money(r.fields.get("amount"), r.fields.get("currency")),
                        tr("today.expires", date=r.fields["ends_on"])
                        if r.fields.get("ends_on")
                        else "",
                    )
                    if x
                ),
                r.pending,
            )
            for r in self._children("contracts")
        ]

    def _tickets(self) -> list[DetailLine]:
        tr = self.session.tr
        return [
            DetailLine(
                r.id,
                str(r.fields.get("title") or ""),
                " · ".join(
                    x
                    for x in (
                        tr.choice("ticket_status", r.fields.get("status")),
                        tr.choice("priority", r.fields.get("priority")),
                    )
                    if x
                ),
                r.pending,
            )
            for r in self._children("tickets", order_by="opened_at")
        ]

    def _tasks(self) -> list[DetailLine]:
        tr = self.session.tr
        return [
            DetailLine(
                r.id,
                str(r.fields.get("title") or ""),
                " · ".join(
                    x
                    for x in (
                        tr.choice("task_status", r.fields.get("status")),
                        local_datetime_text(r.fields.get("due_at")),
                    )
                    if x
                ),
                r.pending,
            )
            for r in self._children("tasks", order_by="due_at")
            if r.fields.get("status") == "open"
        ]

    def _orders(self) -> list[DetailLine]:
        tr = self.session.tr
        return [
            DetailLine(
                r.id,
                str(r.fields.get("number") or ""),
                " · ".join(
                    x
                    for x in (
                        tr.choice("quote_kind", r.fields.get("kind")),
                        tr.choice("quote_status", r.fields.get("status")),
                        money(r.fields.get("total"), r.fields.get("currency")),
                    )
                    if x
                ),
                r.pending,
            )
            for r in self._children("quotes", order_by="number")
        ]

    def _with_photos(self, activity_id: str, text: str) -> str:
        """A timeline line's text plus how many photos the visit has (tap to see them)."""
        attachments = attachments_of(self.session)
        count = len(attachments.list(activity_id)) if attachments is not None else 0
        if not count:
            return text
        photos = self.session.tr("photos.count", n=count)
        return f"{text} · {photos}" if text else photos


def stage_names(session: Session) -> dict[str, str]:
    """Pipeline stage id → name in the current language."""
    zh = session.tr.language == "zh"
    out: dict[str, str] = {}
    for r in session.store.collection("pipeline_stages").query():
        name = str(r.fields.get("name") or r.id)
        out[r.id] = str(r.fields.get("name_zh") or name) if zh else name
    return out


def money(amount: Any, currency: Any = None) -> str:
    if amount is None or isinstance(amount, bool):
        return ""
    try:
        value = float(amount)
    except (TypeError, ValueError):
        return str(amount)
    symbol = {"CNY": "¥", "USD": "$", "EUR": "€", None: "¥", "": "¥"}.get(
        currency if isinstance(currency, str) or currency is None else None
    )
    text = f"{value:,.0f}" if value.is_integer() else f"{value:,.2f}"
    return f"{symbol}{text}" if symbol else f"{text} {currency}"


# ----------------------------------------------------------------------------------
class CustomerFormViewModel(RecordForm):
    """Create or edit a customer; messages under each field come from the schema.

    Values are checked by the schema before the write (the same ``validate`` the store
    and server run), so the rep sees 请填写姓名 under the name field at once, offline.
    Creating one first warns about a customer, lead or contact on the phone with the
    same phone, e-mail or name (a second tap saves anyway).
    """

    collection = "customers"
    FIELDS = (
        "name",
        "company",
        "mobile",
        "phone",
        "email",
        "status",
        "tier",
        "source",
        "city",
        "address",
        "next_follow_up",
        "tags",
        "notes",
    )
    CHOICE_FIELDS = ("status", "tier", "source")
    CHECK_DUPLICATES = True
    NEW_TITLE = "customers.new"
    EDIT_TITLE = "customers.edit"

    def __init__(self, session: Session, customer_id: str | None = None, **defaults: str) -> None:
        super().__init__(session, customer_id, **({"status": "potential"} | defaults))

    @property
    def customer_id(self) -> str | None:
        return self.record_id
