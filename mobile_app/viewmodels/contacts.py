"""Contacts of a customer: add, edit, delete (with undo), and the buttons to reach them."""

from __future__ import annotations

from typing import Any

from .base import Session
from .forms import RecordForm


class ContactFormViewModel(RecordForm):
    collection = "contacts"
    FIELDS = ("name", "title", "phone", "email", "birthday", "notes")

    def __init__(
        self,
        session: Session,
        contact_id: str | None = None,
        customer_id: str | None = None,
        **defaults: str,
    ) -> None:
        super().__init__(session, contact_id, **defaults)
        record = self.current()
        self.customer_id = str(record.fields.get("customer_id")) if record else customer_id

    def extra(self) -> dict[str, Any]:
        return {"customer_id": self.customer_id}
