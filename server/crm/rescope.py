"""Moving the stored records of an entity whose scope changed (migration ``0008``).

``campaign_members`` were reference data (``owner_id`` NULL: on every rep's phone, with
customer ids and revenue); they now follow their customer. :func:`rescope_campaign_members`
places each stored member with its customer's owner (a member without a customer but
with a lead: the lead's owner; with neither: a tombstone, as it belongs to nobody),
gives it a new version, and writes an eviction for every user with a device who no
longer sees it — so the leaked rows leave the phones at their next pull.
"""

from __future__ import annotations

import json
from typing import Any, cast

from sqlalchemy import Connection, Table, insert, select, update

from ..models import Device, Eviction, Record, Team, User
from ..repository.state import lock_counter, store_counter

records_t = cast(Table, Record.__table__)
evictions_t = cast(Table, Eviction.__table__)
users_t = cast(Table, User.__table__)
teams_t = cast(Table, Team.__table__)
devices_t = cast(Table, Device.__table__)


def _seers(conn: Connection) -> dict[str, Any]:
    """For each user with a device: a predicate "sees records of this owner"."""
    users = {u.id: u for u in conn.execute(select(users_t.c.id, users_t.c.role, users_t.c.team_id))}
    led = {t.manager_id: t.id for t in conn.execute(select(teams_t.c.id, teams_t.c.manager_id))}
    members: dict[str | None, set[str]] = {}
    for u in users.values():
        members.setdefault(u.team_id, set()).add(u.id)
    with_devices = set(conn.execute(select(devices_t.c.user_id).distinct()).scalars())
    out: dict[str, Any] = {}
    for uid in with_devices:
        user = users.get(uid)
        if user is None:
            continue
        if user.role == "admin":
            out[uid] = lambda owner: True
        elif user.role == "manager":
            team = members.get(led.get(uid) or user.team_id, set()) | {uid}
            out[uid] = lambda owner, team=team: owner in team
        else:
            out[uid] = lambda owner, uid=uid: owner == uid
    return out


def rescope_campaign_members(conn: Connection, now_ms: int) -> int:
    """Place every stored campaign member with its customer; returns how many moved."""
    rows = conn.execute(
        select(records_t.c.id, records_t.c.record_id, records_t.c.data, records_t.c.deleted)
        .where(
            records_t.c.collection == "campaign_members",
            records_t.c.owner_id.is_(None),
            records_t.c.deleted.is_(False),  # a tombstone is nobody's to see already
        )
        .order_by(records_t.c.id)
    ).all()
    if not rows:
        return 0
    state = lock_counter(conn)
    seers = _seers(conn)
    evictions: list[dict[str, Any]] = []
    for row in rows:
        fields = json.loads(row.data or "{}")
        owner, root, deleted = None, None, bool(row.deleted)
        for collection, key in (("customers", "customer_id"), ("leads", "lead_id")):
            parent_id = fields.get(key)
            if not parent_id:
                continue
            parent = conn.execute(
                select(records_t.c.owner_id, records_t.c.customer_id).where(
                    records_t.c.collection == collection, records_t.c.record_id == parent_id
                )
            ).one_or_none()
            if parent is not None and parent.owner_id is not None:
                owner = parent.owner_id
                root = (parent.customer_id or parent_id) if collection == "customers" else None
                break
        if owner is None:
            deleted = True  # nobody's: a tombstone everyone's devices drop
        state.counter += 1
        conn.execute(
            update(records_t)
            .where(records_t.c.id == row.id)
            .values(
                owner_id=owner,
                customer_id=root,
                deleted=deleted,
                version=state.counter,
                updated_at_ms=now_ms,
            )
        )
        if owner is None:
            continue
        for uid, sees in seers.items():
            if not sees(owner):
                state.counter += 1
                evictions.append(
                    {
                        "user_id": uid,
                        "collection": "campaign_members",
                        "record_id": row.record_id,
                        "version": state.counter,
                        "created_at_ms": now_ms,
                    }
                )
    for start in range(0, len(evictions), 1000):
        conn.execute(insert(evictions_t), evictions[start : start + 1000])
    store_counter(conn, state)
    return len(rows)
