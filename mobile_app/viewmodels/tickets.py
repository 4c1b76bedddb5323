"""Service tickets (工单): open one for a customer, move its status, comment, rate.

Comments and satisfaction responses are append-only events (they never conflict); the
ticket's own ``satisfaction`` field holds the latest score for lists and reports, and a
``satisfaction_responses`` event keeps every rating with its time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sync_protocol import CRM_SCHEMA, ValidationFailed

from .base import Observable, Session, local_datetime_text
from .fields import messages_by_field

STATUSES = CRM_SCHEMA["tickets"].fields["status"].choices
PRIORITIES = CRM_SCHEMA["tickets"].fields["priority"].choices
CLOSED = ("resolved", "closed")


@dataclass(frozen=True, slots=True)
class TicketRow:
    id: str
    title: str
    customer: str
    status: str
    status_label: str
    priority_label: str
    satisfaction: int | None
    pending: bool


@dataclass(frozen=True, slots=True)
class CommentLine:
    id: str
    when: str
    body: str
    pending: bool


class TicketsViewModel(Observable):
    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session
        self.status_filter: str | None = None
        self.rows: list[TicketRow] = []
        self.selected_id: str | None = None
        self.comments: list[CommentLine] = []
        self.errors: dict[str, str] = {}
        self.message = ""
        # the new-ticket form
        self.new_customer_id = ""
        self.new_title = ""
        self.new_description = ""
        self.new_priority = "normal"

    @property
    def status_choices(self) -> list[tuple[str, str]]:
        return [(s, self.session.tr.choice("ticket_status", s)) for s in STATUSES]

    @property
    def priority_choices(self) -> list[tuple[str, str]]:
        return [(p, self.session.tr.choice("priority", p)) for p in PRIORITIES]

    def customer_choices(self) -> list[tuple[str, str]]:
        records = self.session.store.collection("customers").query(order_by="name")
        return [(r.id, str(r.fields.get("name") or r.id)) for r in records]

    def set_filter(self, status: str | None) -> None:
        self.status_filter = status or None
        self.refresh()

    def refresh(self) -> None:
        store = self.session.store
        tr = self.session.tr
        names = {
            r.id: str(r.fields.get("name") or "") for r in store.collection("customers").query()
        }
        where = {"status": self.status_filter} if self.status_filter else None
        records = list(store.collection("tickets").query(where=where))
        # open work first, newest first within it
        records.sort(key=lambda r: str(r.fields.get("opened_at") or ""), reverse=True)
        records.sort(key=lambda r: r.fields.get("status") in CLOSED)
        self.rows = [
            TicketRow(
                id=r.id,
                title=str(r.fields.get("title") or ""),
                customer=names.get(str(r.fields.get("customer_id")), ""),
                status=str(r.fields.get("status") or ""),
                status_label=tr.choice("ticket_status", r.fields.get("status")),
                priority_label=tr.choice("priority", r.fields.get("priority")),
                satisfaction=r.fields.get("satisfaction"),
                pending=r.pending,
            )
            for r in records
        ]
        if self.selected_id:
            self._load_comments()
        self.notify()

    def select(self, ticket_id: str | None) -> None:
        self.selected_id = ticket_id
        self.message = ""
        self._load_comments()
        self.notify()

    @property
    def selected(self) -> TicketRow | None:
        return next((r for r in self.rows if r.id == self.selected_id), None)

    def _load_comments(self) -> None:
        if not self.selected_id:
            self.comments = []
            return
        records = list(
            self.session.store.collection("ticket_comments").query(
                where={"ticket_id": self.selected_id}
            )
        )
        records.sort(key=lambda r: str(r.fields.get("created_at") or ""))
        self.comments = [
            CommentLine(
                r.id,
                local_datetime_text(r.fields.get("created_at")),
                str(r.fields.get("body") or ""),
                r.pending,
            )
            for r in records
        ]

    # -- actions ----------------------------------------------------------------------
    def create(self) -> str | None:
        """Open a ticket from the new-ticket form; its id, or ``None`` with ``errors``."""
        tr = self.session.tr
        values: dict[str, Any] = {
            "customer_id": self.new_customer_id or None,
            "title": self.new_title.strip() or None,
            "description": self.new_description.strip() or None,
            "priority": self.new_priority or None,
            "status": "open",
            "opened_at": self.session.now_iso(),
            "assignee_id": self.session.user.id,
        }
        values = {k: v for k, v in values.items() if v is not None}
        problems = CRM_SCHEMA["tickets"].validate(values, partial=False)
        if problems:
            self.errors = messages_by_field(tr, "tickets", problems)
            if "customer_id" in self.errors:
                self.errors["customer_id"] = tr("tickets.pick_customer")
            self.notify()
            return None
        try:
            record = self.session.store.collection("tickets").insert(values)
        except ValidationFailed as exc:
            self.errors = messages_by_field(tr, "tickets", exc.errors)
            self.notify()
            return None
        self.errors = {}
        self.new_title = self.new_description = ""
        self.message = tr("customers.saved")
        self.selected_id = record.id
        self.refresh()
        return record.id

    def set_status(self, ticket_id: str, status: str) -> None:
        if status not in STATUSES:
            raise ValueError(status)
        patch: dict[str, Any] = {"status": status}
        if status in CLOSED:
            ticket = self.session.store.collection("tickets").get(ticket_id)
            if ticket is not None and not ticket.fields.get("resolved_at"):
                patch["resolved_at"] = self.session.now_iso()
        self.session.store.collection("tickets").update(ticket_id, patch)
        self.refresh()

    def add_comment(self, ticket_id: str, body: str) -> bool:
        text = body.strip()
        ticket = self.session.store.collection("tickets").get(ticket_id)
        if not text or ticket is None:
            return False
        self.session.store.collection("ticket_comments").insert(
            {
                "customer_id": ticket.fields.get("customer_id"),
                "ticket_id": ticket_id,
                "body": text,
                "author_id": self.session.user.id,
                "created_at": self.session.now_iso(),
            }
        )
        self.refresh()
        return True

    def rate(self, ticket_id: str, score: int, comment: str = "") -> bool:
        """Record the customer's satisfaction (1–5): on the ticket and as a response event."""
        if not 1 <= score <= 5:
            self.errors = {"satisfaction": self.session.tr("err.too_large", label="1–5")}
            self.notify()
            return False
        store = self.session.store
        ticket = store.collection("tickets").get(ticket_id)
        if ticket is None:
            return False
        store.collection("tickets").update(ticket_id, {"satisfaction": score})
        response: dict[str, Any] = {
            "customer_id": ticket.fields.get("customer_id"),
            "ticket_id": ticket_id,
            "survey": "ticket",
            "score": score,
            "responded_at": self.session.now_iso(),
        }
        if comment.strip():
            response["comment"] = comment.strip()
        store.collection("satisfaction_responses").insert(response)
        self.message = self.session.tr("tickets.rated", n=score)
        self.refresh()
        return True
