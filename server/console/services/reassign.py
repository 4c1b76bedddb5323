"""The reassignment preview: what moves, before anything moves.

The move itself is the manager API's (:mod:`server.manager.reassignment`): one
transaction that re-versions the customers and their records for the new owner and
writes evictions for whoever no longer sees them. The preview counts the same set: a
customer and every live record whose ``customer_id`` is it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, func, select
from sqlalchemy.orm import Session

from ...errors import Forbidden, NotFound
from ...manager.records import visible_row
from ...models import Record, User
from ..session import ConsoleUser
from .records import names_of

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


def _children(session: Session, customers: Any) -> int:
    """Live records hanging off the customers ``customers`` selects (ids)."""
    return int(
        session.scalar(
            select(func.count()).where(
                records_t.c.customer_id.in_(customers),
                records_t.c.collection != "customers",
                records_t.c.deleted.is_(False),
            )
        )
        or 0
    )


def preview_one(session: Session, me: ConsoleUser, customer_id: str, to_id: str) -> Preview:
    row = visible_row(session.connection(), me.principal, "customers", customer_id)
    owner = _rep(session, me, row.owner_id or "", leaving=True)
    target = _rep(session, me, to_id)
    preview = Preview(
        mode="one",
        customer_ids=[row.id],
        sample=[(row.id, str(row.fields.get("name", row.id)))],
        customers=1,
        records=_children(session, [row.id]),  # a list works as well as a select
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
    of_owner = select(records_t.c.record_id).where(
        records_t.c.collection == "customers",
        records_t.c.owner_id == owner.id,
        records_t.c.deleted.is_(False),
    )
    ids = list(session.scalars(of_owner.order_by(records_t.c.record_id)))
    shown = names_of(session.connection(), "customers", ids[:SAMPLE])
    sample = [(i, shown.get(i, i)) for i in ids[:SAMPLE]]
    preview = Preview(
        mode="book",
        customer_ids=ids,
        sample=sample,
        customers=len(ids),
        records=_children(session, of_owner),
        from_id=owner.id,
        from_name=owner.display_name,
        to_id=target.id,
        to_name=target.display_name,
    )
    session.rollback()
    return preview
