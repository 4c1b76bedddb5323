"""Today: what the rep must do now — follow-ups due and overdue (with the number to
call, mobile first), open tasks (✓ with Undo), and contracts whose renewal reminder has
started (each contract's own ``remind_days_before``, 30 days when it has none).

"Today" is the phone's local date (``Session.today``), which tests pin through the
session clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from .actions import complete_task_with_undo
from .base import Observable, Session, local_datetime_text, parse_date, parse_when
from .contracts import contract_line, renewal_due
from .links import phone_numbers


@dataclass(frozen=True, slots=True)
class TodayItem:
    id: str
    collection: str
    customer_id: str
    title: str
    subtitle: str
    late: bool = False
    phone: str = ""


class TodayViewModel(Observable):
    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session
        self.overdue: list[TodayItem] = []
        self.due_today: list[TodayItem] = []
        self.tasks: list[TodayItem] = []
        self.expiring: list[TodayItem] = []

    def refresh(self) -> None:
        store = self.session.store
        tr = self.session.tr
        today = self.session.today()
        names: dict[str, str] = {}
        self.overdue, self.due_today = [], []
        for c in store.collection("customers").query(order_by="next_follow_up"):
            names[c.id] = str(c.fields.get("name") or "")
            due = parse_date(c.fields.get("next_follow_up"))
            if due is None or due > today:
                continue
            numbers = phone_numbers("customers", c.fields)
            phone = numbers[0].number if numbers else ""
            subtitle = " · ".join(x for x in (str(c.fields.get("company") or ""), phone) if x)
            if due < today:
                lateness = tr("today.days_late", n=(today - due).days)
                subtitle = f"{lateness} · {subtitle}" if subtitle else lateness
            item = TodayItem(c.id, "customers", c.id, names[c.id], subtitle, due < today, phone)
            (self.overdue if due < today else self.due_today).append(item)
        tasks = [t for t in store.collection("tasks").query(where={"status": "open"})]
        tasks.sort(key=lambda t: (str(t.fields.get("due_at") or "9999"), t.id))
        self.tasks = []
        for t in tasks:
            due_at = parse_when(t.fields.get("due_at"))
            late = bool(due_at and due_at.astimezone().date() < today)
            customer_id = str(t.fields.get("customer_id") or "")
            bits = [names.get(customer_id, "")]
            if due_at:
                bits.append(tr("today.due_at", date=local_datetime_text(t.fields.get("due_at"))))
            self.tasks.append(
                TodayItem(
                    t.id,
                    "tasks",
                    customer_id,
                    str(t.fields.get("title") or ""),
                    " · ".join(b for b in bits if b),
                    late,
                )
            )
        self.expiring = []
        for k in store.collection("contracts").query(order_by="ends_on"):
            if not renewal_due(k.fields, today):
                continue
            customer_id = str(k.fields.get("customer_id") or "")
            self.expiring.append(
                TodayItem(
                    k.id,
                    "contracts",
                    customer_id,
                    f"{k.fields.get('number', '')} {names.get(customer_id, '')}".strip(),
                    contract_line(self.session, k.fields, today),
                )
            )
        self.notify()

    def complete_task(self, task_id: str) -> None:
        """Done in one tap; the snackbar offers Undo (reopens the task)."""
        complete_task_with_undo(self.session, task_id)
        self.refresh()

    @property
    def sections(self) -> list[tuple[str, list[TodayItem]]]:
        tr = self.session.tr
        return [
            (tr("today.overdue"), self.overdue),
            (tr("today.due"), self.due_today),
            (tr("today.tasks"), self.tasks),
            (tr("today.renewals"), self.expiring),
        ]
