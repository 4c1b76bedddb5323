"""Tasks (任务提醒): the list, create/edit, done with Undo, and reminders.

A task's ``remind_at`` is when the phone should remind the rep. Reminders are computed
on the phone from the tasks themselves (no server needed): :func:`due_reminders` lists
open tasks whose reminder time has come and that were not announced yet. The app
posts them as local notifications where the platform has them (Android, through
plyer) and as an in-app banner otherwise; a reminder is announced once per task and
reminder time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .base import Observable, Session, local_datetime_text, parse_when
from .forms import RecordForm

TASK_FILTERS = ("open", "done", "all")


@dataclass(frozen=True, slots=True)
class TaskRow:
    id: str
    title: str
    subtitle: str
    status: str
    late: bool
    pending: bool


class TaskListViewModel(Observable):
    def __init__(self, session: Session, customer_id: str | None = None) -> None:
        super().__init__()
        self.session = session
        self.customer_id = customer_id
        self.filter = "open"
        self.rows: list[TaskRow] = []

    @property
    def filter_choices(self) -> list[tuple[str, str]]:
        tr = self.session.tr
        return [(f, tr(f"tasks.filter.{f}")) for f in TASK_FILTERS]

    def set_filter(self, value: str) -> None:
        self.filter = value if value in TASK_FILTERS else "open"
        self.refresh()

    def refresh(self) -> None:
        store = self.session.store
        tr = self.session.tr
        names = {r.id: str(r.fields.get("name") or "") for r in store.collection("customers").all()}
        where: dict[str, Any] = {}
        if self.filter != "all":
            where["status"] = self.filter
        if self.customer_id:
            where["customer_id"] = self.customer_id
        records = list(store.collection("tasks").query(where=where or None))
        records.sort(key=lambda t: (str(t.fields.get("due_at") or "9999"), t.id))
        if self.filter == "done":
            records.sort(key=lambda t: str(t.fields.get("completed_at") or ""), reverse=True)
        today = self.session.today()
        self.rows = []
        for t in records:
            f = t.fields
            due = parse_when(f.get("due_at"))
            status = str(f.get("status") or "")
            bits = [names.get(str(f.get("customer_id")), "")]
            if due:
                bits.append(tr("today.due_at", date=local_datetime_text(f.get("due_at"))))
            if f.get("remind_at") and status == "open":
                bits.append(tr("tasks.remind", when=local_datetime_text(f.get("remind_at"))))
            if status != "open":
                bits.append(tr.choice("task_status", status))
            self.rows.append(
                TaskRow(
                    t.id,
                    str(f.get("title") or ""),
                    " · ".join(b for b in bits if b),
                    status,
                    bool(status == "open" and due and due.astimezone().date() < today),
                    t.pending,
                )
            )
        self.notify()


class TaskFormViewModel(RecordForm):
    collection = "tasks"
    FIELDS = ("title", "customer_id", "due_at", "remind_at", "priority", "notes")
    CHOICE_FIELDS = ("priority",)

    def __init__(self, session: Session, task_id: str | None = None, **defaults: str) -> None:
        super().__init__(session, task_id, **({"priority": "normal"} | defaults))

    def kind(self, name: str) -> str:
        if name == "customer_id":
            return "customer"
        return super().kind(name)

    def extra(self) -> dict[str, Any]:
        return {"status": "open", "assignee_id": self.session.user.id}


@dataclass(frozen=True, slots=True)
class Reminder:
    task_id: str
    key: str  # task id + reminder time: announced once
    title: str
    message: str
    at: str = ""


def due_reminders(
    session: Session, announced: set[str], now: datetime | None = None
) -> list[Reminder]:
    """Open tasks whose ``remind_at`` has come and that are not in ``announced`` yet."""
    tr = session.tr
    moment = now or session.now()
    names = {
        r.id: str(r.fields.get("name") or "") for r in session.store.collection("customers").all()
    }
    out: list[Reminder] = []
    for task in session.store.collection("tasks").query(where={"status": "open"}):
        f = task.fields
        when = parse_when(f.get("remind_at"))
        if when is None or when > moment:
            continue
        key = f"{task.id}@{f.get('remind_at')}"
        if key in announced:
            continue
        due = local_datetime_text(f.get("due_at"))
        customer = names.get(str(f.get("customer_id")), "")
        message = " · ".join(
            b for b in (customer, tr("today.due_at", date=due) if due else "") if b
        )
        out.append(Reminder(task.id, key, str(f.get("title") or ""), message, when.isoformat()))
    out.sort(key=lambda r: r.at)
    return out
