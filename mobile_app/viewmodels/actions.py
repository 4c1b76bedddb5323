"""One-tap and destructive actions that offer Undo: delete, complete a task.

Which records a rep may delete: contacts, tasks, leads that were never converted,
draft quotes and their lines — things the rep made. Customers, deals, contracts and
tickets are the company's history; reps close or reassign them, they do not delete
them (the server refuses too). Append-only events (activities, comments) cannot be
deleted by anyone.
"""

from __future__ import annotations

from typing import Any

from .base import Session

#: Collections a rep may delete from the phone, with a test on the record's fields.
DELETABLE: dict[str, Any] = {
    "contacts": lambda f: True,
    "tasks": lambda f: True,
    "leads": lambda f: f.get("status") != "converted",
    "quotes": lambda f: f.get("status") == "draft",
    "quote_lines": lambda f: True,
}


def may_delete(session: Session, collection: str, record_id: str) -> bool:
    test = DELETABLE.get(collection)
    record = session.store.collection(collection).get(record_id) if test else None
    return bool(test and record is not None and test(record.fields))


def delete_with_undo(session: Session, collection: str, record_id: str) -> bool:
    """Delete now and offer Undo (which writes the record again with the same id).

    A draft quote goes with its lines (and comes back with them).
    """
    if not may_delete(session, collection, record_id):
        return False
    store = session.store
    record = store.collection(collection).get(record_id)
    assert record is not None
    removed: list[tuple[str, str, dict[str, Any]]] = []
    if collection == "quotes":
        for line in store.collection("quote_lines").query(where={"quote_id": record_id}):
            removed.append(("quote_lines", line.id, dict(line.fields)))
    removed.append((collection, record_id, dict(record.fields)))
    for name, rid, _fields in removed:
        store.collection(name).delete(rid)

    def restore() -> None:
        for name, rid, fields in reversed(removed):
            writable = _writable(name, fields)
            collection_ = store.collection(name)
            if collection_.get(rid) is None:
                collection_.insert(writable, id=rid)

    title = str(record.fields.get("name") or record.fields.get("title") or "")
    title = title or str(record.fields.get("number") or "")
    session.undo.offer(
        session.tr("undo.deleted", what=session.tr.entity_label(collection), name=title), restore
    )
    return True


def _writable(collection: str, fields: dict[str, Any]) -> dict[str, Any]:
    """A record's fields minus the ones a device may not write (owner, sync fields)."""
    from sync_protocol import CRM_SCHEMA
    from sync_protocol.schema import RESERVED_FIELDS

    entity = CRM_SCHEMA[collection]
    return {
        k: v
        for k, v in fields.items()
        if k in entity.fields and not entity.fields[k].read_only and k not in RESERVED_FIELDS
    }


def complete_task_with_undo(session: Session, task_id: str) -> bool:
    """Mark a task done (one tap) and offer Undo (reopen it)."""
    tasks = session.store.collection("tasks")
    task = tasks.get(task_id)
    if task is None or task.fields.get("status") != "open":
        return False
    tasks.update(task_id, {"status": "done", "completed_at": session.now_iso()})

    def reopen() -> None:
        tasks.update(task_id, {"status": "open", "completed_at": None})

    title = str(task.fields.get("title") or "")
    session.undo.offer(session.tr("undo.task_done", name=title), reopen)
    return True
