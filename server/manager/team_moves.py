"""When a person changes team or role, phones follow (a *team move*).

Visibility hangs off people: a record owned by a rep is seen by the rep and the
managers of the rep's team; a manager sees every record of the team they lead. So a
move changes two things, and :func:`rescope_after_move` repairs both in the transaction
that made the move:

* **who sees the mover's records** — everyone who saw them before and no longer does
  (the old team's managers) gets an eviction; when someone new sees them (the new
  team's managers) the records get new versions, so those devices pull them;
* **what the mover sees** (a manager, or a role change) — records of owners the mover
  no longer sees are evicted from the mover's devices; records of owners newly in
  sight get new versions, so the mover's devices pull them.

Called by ``PATCH /v1/manager/users/{id}`` (team or role changed) with the picture taken
before the change (:func:`snapshot`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from ..accounts import Principal, principal_for
from ..crm.moves import records_reversioned
from ..models import Eviction, Record, User
from ..repository.admin import _viewers_of
from ..repository.state import lock_counter, store_counter

records_t = cast(Table, Record.__table__)
evictions_t = cast(Table, Eviction.__table__)


@dataclass(frozen=True, slots=True)
class Snapshot:
    principal: Principal
    #: Users (not admins) who see the mover's records, and whether they do.
    viewers: frozenset[str]


@dataclass(slots=True)
class MoveResult:
    reversioned: int = 0
    evictions: int = 0


def _seen_owners(p: Principal) -> frozenset[str] | None:
    """Owners whose records ``p`` sees (``None``: everyone, an admin)."""
    if p.role == "admin":
        return None
    if p.role == "manager":
        return p.team_member_ids | {p.user_id}
    return frozenset({p.user_id})


def snapshot(session: Session, user: User) -> Snapshot:
    conn = session.connection()
    viewers = frozenset(v.user_id for v in _viewers_of(conn, user.id) if v.sees(user.id))
    return Snapshot(principal_for(session, user), viewers)


def _rows_of(conn: Connection, owners: frozenset[str]) -> Sequence[Any]:
    if not owners:
        return []
    return conn.execute(
        select(records_t.c.id, records_t.c.collection, records_t.c.record_id).where(
            records_t.c.owner_id.in_(sorted(owners))
        )
    ).all()


def rescope_after_move(
    session: Session,
    user: User,
    before: Snapshot,
    *,
    now_ms: int,
    server_hlc: Callable[[], str],
) -> MoveResult:
    """Evictions and new versions after ``user``'s team or role changed (flushed).
    Only versions move (fields and their clocks are unchanged): ``server_hlc`` is taken
    for the signature every server write shares."""
    session.flush()
    conn = session.connection()
    after_principal = principal_for(session, user)
    after_viewers = frozenset(v.user_id for v in _viewers_of(conn, user.id) if v.sees(user.id))
    state = lock_counter(conn)
    result = MoveResult()
    evictions: list[dict[str, Any]] = []
    bump: dict[int, tuple[str, str]] = {}

    def evict(user_id: str, rows: Sequence[Any]) -> None:
        for r in rows:
            state.counter += 1
            evictions.append(
                {
                    "user_id": user_id,
                    "collection": r.collection,
                    "record_id": r.record_id,
                    "version": state.counter,
                    "created_at_ms": now_ms,
                }
            )

    own = _rows_of(conn, frozenset({user.id}))
    for gone in sorted(before.viewers - after_viewers - {user.id}):
        evict(gone, own)
    if after_viewers - before.viewers - {user.id}:
        bump.update({r.id: (r.collection, r.record_id) for r in own})

    seen_before, seen_after = _seen_owners(before.principal), _seen_owners(after_principal)
    if seen_before is not None and seen_after is not None:
        evict(user.id, _rows_of(conn, seen_before - seen_after))
        gained = _rows_of(conn, seen_after - seen_before)
    elif seen_after is None and seen_before is not None:  # became an admin: sees it all
        gained = conn.execute(
            select(records_t.c.id, records_t.c.collection, records_t.c.record_id).where(
                records_t.c.owner_id.not_in(sorted(seen_before)) | records_t.c.owner_id.is_(None)
            )
        ).all()
    else:
        gained = []
        if seen_before is None and seen_after is not None:  # no longer an admin
            evict(
                user.id,
                conn.execute(
                    select(records_t.c.collection, records_t.c.record_id).where(
                        records_t.c.owner_id.is_not(None),
                        records_t.c.owner_id.not_in(sorted(seen_after)),
                    )
                ).all(),
            )
    bump.update({r.id: (r.collection, r.record_id) for r in gained})
    if bump:
        values = []
        for pk in sorted(bump):
            state.counter += 1
            values.append({"_pk": pk, "version": state.counter, "updated_at_ms": now_ms})
        conn.execute(
            update(records_t)
            .where(records_t.c.id == bindparam("_pk"))
            .values(version=bindparam("version"), updated_at_ms=bindparam("updated_at_ms")),
            values,
        )
        records_reversioned(conn, sorted(bump), now_ms)  # webhooks now in scope hear of them
    for start in range(0, len(evictions), 1000):
        conn.execute(insert(evictions_t), evictions[start : start + 1000])
    store_counter(conn, state)
    result.reversioned, result.evictions = len(bump), len(evictions)
    return result


__all__ = ["MoveResult", "Snapshot", "rescope_after_move", "snapshot"]
