"""Pick a customer (or a product, a contact) by typing: characters, pinyin or initials.

A rep with 100+ customers does not scroll a dropdown. The picker searches the store as
the rep types — the store's text search covers the record's searchable fields and the
pinyin keys the app registers, so ``zs``, ``zhangsan`` and ``张`` all find 张三 — and
shows the first matches with a second line (company, phone) to tell namesakes apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import Observable, Session

#: How many matches the picker lists at once.
PICKER_ROWS = 30
_SUBTITLE = {
    "customers": ("company", "mobile", "phone", "city"),
    "products": ("sku", "category", "unit"),
    "contacts": ("title", "phone"),
    "leads": ("company", "phone"),
    "knowledge_articles": ("category",),
}


@dataclass(frozen=True, slots=True)
class PickerRow:
    id: str
    title: str
    subtitle: str


class RecordPicker(Observable):
    def __init__(self, session: Session, collection: str = "customers", **where: str) -> None:
        super().__init__()
        self.session = session
        self.collection = collection
        self.where = dict(where) or None
        self.query = ""
        self.rows: list[PickerRow] = []
        self.matched = 0

    def set_query(self, text: str) -> None:
        self.query = text
        self.refresh()

    def refresh(self) -> None:
        records = self.session.store.collection(self.collection).query(
            where=self.where, search=self.query.strip() or None, order_by="name"
        )
        self.matched = len(records)
        fields = _SUBTITLE.get(self.collection, ())
        self.rows = [
            PickerRow(
                r.id,
                str(r.fields.get("name") or r.fields.get("title") or r.id),
                " · ".join(str(r.fields[k]) for k in fields if r.fields.get(k)),
            )
            for r in records[:PICKER_ROWS]
        ]
        self.notify()

    def title_of(self, record_id: str | None) -> str:
        if not record_id:
            return ""
        record = self.session.store.collection(self.collection).get(record_id)
        if record is None:
            return ""
        return str(record.fields.get("name") or record.fields.get("title") or "")
