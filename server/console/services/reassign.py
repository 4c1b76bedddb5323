"""The reassignment preview: what moves, before anything moves.

The move itself is the manager API's (:mod:`server.manager.reassignment`): one
transaction that re-versions the customers and their records for the new owner and
writes evictions for whoever no longer sees them. The preview counts the same set: a
customer and every live record whose ``customer_id`` is it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, func, select
from sqlalchemy.orm import Session

from ...errors import Forbidden, NotFound
from ...manager.records import visible_row
from ...models import Record, User
from ..session import ConsoleUser

records_t = cast(Table, Record.__table__)
SAMPLE = 20


@dataclass(slots=True)
class Preview:
    mode: str
    customer_ids: list[str]
    sample: list[tuple[str, str]]
    customers: int
    records: int
    from_id: str
    from_name: str
    to_id: str
    to_name: str


def _rep(session: Session, me: ConsoleUser, user_id: str, *, leaving: bool = False) -> User:
    """A user of the caller's team; the receiving one must be active (a leaving one not)."""
    user = session.get(User, user_id)
    if user is None or not me.principal.sees_owner(user.id):
        raise NotFound(f"no user {user_id!r} in your team", details={"user_id": user_id})
    if not leaving and not user.active:
        raise Forbidden("that account is deactivated")
    return user


def _children(session: Session, customer_ids: list[str]) -> int:
    if not customer_ids:
        return 0
    total = 0
    for start in range(0, len(customer_ids), 500):
        chunk = customer_ids[start : start + 500]
        total += int(
            session.scalar(
                select(func.count()).where(
                    records_t.c.customer_id.in_(chunk),
                    records_t.c.collection != "customers",
                    records_t.c.deleted.is_(False),
                )
            )
            or 0
        )
    return total


def preview_one(session: Session, me: ConsoleUser, customer_id: str, to_id: str) -> Preview:
    row = visible_row(session.connection(), me.principal, "customers", customer_id)
    owner = _rep(session, me, row.owner_id or "", leaving=True)
    target = _rep(session, me, to_id)
    preview = Preview(
        mode="one",
        customer_ids=[row.id],
        sample=[(row.id, str(row.fields.get("name", row.id)))],
        customers=1,
        records=_children(session, [row.id]),
        from_id=owner.id,
        from_name=owner.display_name,
        to_id=target.id,
        to_name=target.display_name,
    )
    session.rollback()
    return preview


def preview_book(session: Session, me: ConsoleUser, from_id: str, to_id: str) -> Preview:
    owner = _rep(session, me, from_id, leaving=True) if from_id else None
    if owner is None:
        raise NotFound("choose the rep whose customers move")
    target = _rep(session, me, to_id)
    rows = session.execute(
        select(records_t.c.record_id, records_t.c.data)
        .where(
            records_t.c.collection == "customers",
            records_t.c.owner_id == owner.id,
            records_t.c.deleted.is_(False),
        )
        .order_by(records_t.c.record_id)
    ).all()
    ids = [r.record_id for r in rows]
    sample = [
        (r.record_id, str(json.loads(r.data).get("name", r.record_id))) for r in rows[:SAMPLE]
    ]
    preview = Preview(
        mode="book",
        customer_ids=ids,
        sample=sample,
        customers=len(ids),
        records=_children(session, ids),
        from_id=owner.id,
        from_name=owner.display_name,
        to_id=target.id,
        to_name=target.display_name,
    )
    session.rollback()
    return preview
