"""Changes made by the server itself: customer reassignment and tombstone purge.

Both run under the counter lock like a push (:mod:`.state`), so their new versions are
ordered with every device write.

**Reassignment** moves a customer and everything hanging off it (every record whose
``customer_id`` is the customer's, conflicts included) to a new owner in one
transaction. Each moved record gets a new version — so the new owner's devices pull
it — and every user who saw it before and no longer does (the old owner, the old team's
manager) gets an eviction at a version of the same sequence, so their devices drop it.

**Purge** deletes tombstones and evictions older than the retention period and raises
the purge horizon to the newest version it removed; a checkpoint below the horizon may
have missed a deletion and is answered ``resync_required``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, delete, func, insert, select, update

from sync_protocol import FieldClock, SchemaRegistry, Scope

from ..accounts import Principal
from ..errors import Forbidden, NotFound
from ..models import AuditEntry, Eviction, Record, Team, User
from ..scope import sees_owner
from .rows import canonical_json, decode_record, encode_clocks
from .state import lock_counter, store_counter

records_t = cast(Table, Record.__table__)
evictions_t = cast(Table, Eviction.__table__)
users_t = cast(Table, User.__table__)
teams_t = cast(Table, Team.__table__)
audit_t = cast(Table, AuditEntry.__table__)


@dataclass(slots=True)
class ReassignResult:
    customer_ids: list[str]
    new_owner_id: str
    moved_records: int = 0
    evictions: int = 0
    evicted_users: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Viewer:
    user_id: str
    role: str
    team_member_ids: frozenset[str]
    team_id: str | None = None

    def sees(self, owner_id: str) -> bool:
        return sees_owner(self, owner_id)


def _user(conn: Connection, user_id: str) -> Any:
    return conn.execute(
        select(users_t.c.id, users_t.c.role, users_t.c.team_id).where(users_t.c.id == user_id)
    ).one_or_none()


def _team_members(conn: Connection, team_id: str | None) -> frozenset[str]:
    if team_id is None:
        return frozenset()
    return frozenset(
        conn.execute(select(users_t.c.id).where(users_t.c.team_id == team_id)).scalars()
    )


def _viewers_of(conn: Connection, owner_id: str) -> list[_Viewer]:
    """The users (other than admins) who see records owned by ``owner_id``."""
    owner = _user(conn, owner_id)
    viewers = [_Viewer(owner_id, owner.role if owner else "rep", frozenset())]
    if owner is not None and owner.team_id is not None:
        managers = conn.execute(
            select(teams_t.c.manager_id).where(teams_t.c.id == owner.team_id)
        ).scalars()
        # The team's designated manager, and every manager-role member who leads no
        # other team (a second manager, an API key's service account): they all see
        # the team (:func:`server.accounts.principal_for`).
        leaders_elsewhere = set(
            conn.execute(
                select(teams_t.c.manager_id).where(
                    teams_t.c.id != owner.team_id, teams_t.c.manager_id.is_not(None)
                )
            ).scalars()
        )
        members = conn.execute(
            select(users_t.c.id).where(
                users_t.c.team_id == owner.team_id, users_t.c.role == "manager"
            )
        ).scalars()
        seen = {owner_id}
        for manager_id in [*managers, *(m for m in members if m not in leaders_elsewhere)]:
            if manager_id and manager_id not in seen:
                seen.add(manager_id)
                viewers.append(_Viewer(manager_id, "manager", _team_members(conn, owner.team_id)))
    if owner is not None and owner.role == "manager":
        # A manager owner sees through their team too.
        viewers[0] = _Viewer(owner_id, "manager", _team_members(conn, owner.team_id))
    return viewers


def reassign_customers(
    conn: Connection,
    actor: Principal,
    customer_ids: Sequence[str],
    new_owner_id: str,
    *,
    now_ms: int,
    server_hlc: Callable[[], str],
) -> ReassignResult:
    """Move customers (and their records) to ``new_owner_id``; see the module docstring."""
    if actor.role not in ("manager", "admin"):
        raise Forbidden("only managers and admins reassign customers")
    new_owner = _user(conn, new_owner_id)
    if new_owner is None:
        raise NotFound(f"no user {new_owner_id!r}", details={"user_id": new_owner_id})
    if not actor.sees_owner(new_owner_id):
        raise Forbidden("the new owner is not in your team")
    state = lock_counter(conn)
    ids = sorted(set(customer_ids))
    customers = {
        r.record_id: r.owner_id
        for r in conn.execute(
            select(records_t.c.record_id, records_t.c.owner_id).where(
                records_t.c.collection == "customers", records_t.c.record_id.in_(ids)
            )
        )
    }
    missing = [c for c in ids if c not in customers]
    if missing:
        raise NotFound("unknown customers", details={"customer_ids": missing})
    for cid, owner in customers.items():
        if not actor.sees_owner(owner):
            raise Forbidden("a customer is outside your scope", details={"customer_id": cid})

    rows = conn.execute(
        select(
            records_t.c.id,
            records_t.c.collection,
            records_t.c.record_id,
            records_t.c.owner_id,
            records_t.c.deleted,
            records_t.c.data,
            records_t.c.clocks,
        )
        .where(records_t.c.customer_id.in_(ids))
        .order_by(records_t.c.id)
    ).all()
    updates, evictions, evicted = _move(conn, actor, rows, new_owner_id, state, now_ms, server_hlc)
    return _finish_move(
        conn, actor, "customer_ids", ids, new_owner_id, state, now_ms, updates, evictions, evicted
    )


#: Collections whose records carry their owner as a field (kept equal to the column).
_OWNER_FIELD_COLLECTIONS = frozenset({"customers", "leads", "sales_targets"})


def _crm_owner_field(collection: str) -> str | None:
    return "owner_id" if collection in _OWNER_FIELD_COLLECTIONS else None


def _move(
    conn: Connection,
    actor: Principal,
    rows: Sequence[Any],
    new_owner_id: str,
    state: Any,
    now_ms: int,
    server_hlc: Callable[[], str],
    owner_field_of: Callable[[str], str | None] = _crm_owner_field,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], set[str]]:
    """Give ``rows`` (id, collection, record_id, owner_id, deleted, data, clocks) to
    ``new_owner_id``: a new version each, and an eviction for every viewer of the old
    owner who does not see the new one. ``owner_field_of(collection)`` names the field
    that carries the owner in the record (kept equal to the column). Returns (updates,
    evictions, evicted users)."""
    viewers_cache: dict[str, list[_Viewer]] = {}
    updates: list[dict[str, Any]] = []
    evictions: list[dict[str, Any]] = []
    evicted: set[str] = set()
    hlc = server_hlc()
    for row in rows:
        if row.owner_id == new_owner_id:
            continue
        state.counter += 1
        version = state.counter
        values: dict[str, Any] = {"_pk": row.id, "owner_id": new_owner_id, "version": version}
        data, clocks = row.data, row.clocks
        owner_field = owner_field_of(row.collection)
        if owner_field is not None:
            record = decode_record(row.data, row.clocks, row.deleted)
            record.fields[owner_field] = new_owner_id
            record.clocks[owner_field] = FieldClock(hlc, version)
            data, clocks = canonical_json(record.fields), encode_clocks(record)
        values.update(data=data, clocks=clocks, updated_at_ms=now_ms, updated_by=actor.user_id)
        updates.append(values)
        old = row.owner_id
        if old is not None:
            viewers = viewers_cache.get(old)
            if viewers is None:
                viewers = viewers_cache[old] = _viewers_of(conn, old)
            for viewer in viewers:
                if not viewer.sees(new_owner_id):
                    state.counter += 1
                    evictions.append(
                        {
                            "user_id": viewer.user_id,
                            "collection": row.collection,
                            "record_id": row.record_id,
                            "version": state.counter,
                            "created_at_ms": now_ms,
                        }
                    )
                    evicted.add(viewer.user_id)
    if updates:
        conn.execute(
            update(records_t)
            .where(records_t.c.id == bindparam("_pk"))
            .values(
                owner_id=bindparam("owner_id"),
                version=bindparam("version"),
                data=bindparam("data"),
                clocks=bindparam("clocks"),
                updated_at_ms=bindparam("updated_at_ms"),
                updated_by=bindparam("updated_by"),
            ),
            updates,
        )
    if evictions:
        conn.execute(insert(evictions_t), evictions)
    if updates:
        # the search table's owner copy and the webhooks follow the move (lazy: the
        # CRM's rules import this package)
        from ..crm.moves import records_moved

        by_pk = {row.id: (row.collection, row.record_id) for row in rows}
        moved = [(u["_pk"], *by_pk[u["_pk"]]) for u in updates]
        records_moved(conn, moved, new_owner_id, now_ms)
    return updates, evictions, evicted


def _finish_move(
    conn: Connection,
    actor: Principal,
    collection: str,
    ids: list[str],
    new_owner_id: str,
    state: Any,
    now_ms: int,
    updates: list[dict[str, Any]],
    evictions: list[dict[str, Any]],
    evicted: set[str],
) -> ReassignResult:
    """Audit a move of ``ids`` (listed under ``collection`` in the audit entry) and
    commit the versions it used."""
    conn.execute(
        insert(audit_t).values(
            at_ms=now_ms,
            user_id=actor.user_id,
            device_id=actor.device_id,
            action="admin.reassign",
            target=f"users/{new_owner_id}",
            details=json.dumps(
                {collection: ids, "moved": len(updates), "evictions": len(evictions)}
            ),
        )
    )
    store_counter(conn, state)
    return ReassignResult(ids, new_owner_id, len(updates), len(evictions), sorted(evicted))


def reassign_records(
    conn: Connection,
    actor: Principal,
    collection: str,
    record_ids: Sequence[str],
    new_owner_id: str,
    *,
    now_ms: int,
    server_hlc: Callable[[], str],
) -> ReassignResult:
    """Move owner-scoped records that hang off no customer — leads, sales targets — to
    ``new_owner_id`` (a rep the actor sees), with evictions like a customer's move."""
    if actor.role not in ("manager", "admin"):
        raise Forbidden("only managers and admins reassign records")
    if _user(conn, new_owner_id) is None:
        raise NotFound(f"no user {new_owner_id!r}", details={"user_id": new_owner_id})
    if not actor.sees_owner(new_owner_id):
        raise Forbidden("the new owner is not in your team")
    state = lock_counter(conn)
    ids = sorted(set(record_ids))
    rows = conn.execute(
        select(
            records_t.c.id,
            records_t.c.collection,
            records_t.c.record_id,
            records_t.c.owner_id,
            records_t.c.deleted,
            records_t.c.data,
            records_t.c.clocks,
        )
        .where(records_t.c.collection == collection, records_t.c.record_id.in_(ids))
        .order_by(records_t.c.id)
    ).all()
    found = {r.record_id for r in rows if not r.deleted}
    missing = [i for i in ids if i not in found]
    if missing:
        raise NotFound(f"unknown {collection}", details={"record_ids": missing})
    for r in rows:
        if not actor.sees_owner(r.owner_id):
            raise Forbidden(
                f"a record of {collection} is outside your scope",
                details={"record_id": r.record_id},
            )
    updates, evictions, evicted = _move(conn, actor, rows, new_owner_id, state, now_ms, server_hlc)
    return _finish_move(
        conn, actor, collection, ids, new_owner_id, state, now_ms, updates, evictions, evicted
    )


def reassign_owned(
    conn: Connection,
    actor: Principal,
    schema: SchemaRegistry,
    collection: str,
    record_ids: Sequence[str],
    new_owner_id: str,
    *,
    now_ms: int,
    server_hlc: Callable[[], str],
) -> ReassignResult:
    """Move records of an ``owner``-scoped collection of any schema to ``new_owner_id``
    — and, when other collections inherit their scope from it (``parent``), every record
    hanging off them, down the chain — with evictions for whoever no longer sees them
    (:mod:`server.scope`)."""
    entity = schema.get(collection)
    if entity is None:
        raise NotFound(f"unknown collection {collection!r}", details={"collection": collection})
    if entity.scope is not Scope.OWNER:
        raise Forbidden(
            f"{collection} records have no owner to change (scope {entity.scope.value})",
            details={"collection": collection},
        )
    if actor.role not in ("manager", "admin"):
        raise Forbidden("only managers and admins reassign records")
    if _user(conn, new_owner_id) is None:
        raise NotFound(f"no user {new_owner_id!r}", details={"user_id": new_owner_id})
    if not sees_owner(actor, new_owner_id):
        raise Forbidden("the new owner is not in your team")
    state = lock_counter(conn)
    ids = sorted(set(record_ids))
    columns = (
        records_t.c.id,
        records_t.c.collection,
        records_t.c.record_id,
        records_t.c.owner_id,
        records_t.c.deleted,
        records_t.c.data,
        records_t.c.clocks,
    )
    chosen = (records_t.c.collection == collection) & records_t.c.record_id.in_(ids)
    if collection in schema.parents():
        chosen = chosen | records_t.c.customer_id.in_(ids)  # the chains rooted there
    rows = conn.execute(select(*columns).where(chosen).order_by(records_t.c.id)).all()
    roots = [r for r in rows if r.collection == collection and r.record_id in ids]
    found = {r.record_id for r in roots if not r.deleted}
    missing = [i for i in ids if i not in found]
    if missing:
        raise NotFound(f"unknown {collection}", details={"record_ids": missing})
    for r in roots:
        if not sees_owner(actor, r.owner_id):
            raise Forbidden(
                f"a record of {collection} is outside your scope",
                details={"record_id": r.record_id},
            )

    def owner_field_of(name: str) -> str | None:
        e = schema.get(name)
        if e is None or e.scope is not Scope.OWNER or e.owner_field not in e.fields:
            return None
        return e.owner_field

    updates, evictions, evicted = _move(
        conn, actor, rows, new_owner_id, state, now_ms, server_hlc, owner_field_of
    )
    return _finish_move(
        conn, actor, collection, ids, new_owner_id, state, now_ms, updates, evictions, evicted
    )


@dataclass(slots=True)
class PurgeResult:
    tombstones: int
    evictions: int
    purge_horizon: int


def purge_tombstones(conn: Connection, *, older_than_ms: int, now_ms: int) -> PurgeResult:
    """Delete tombstones and evictions last changed before ``older_than_ms``."""
    state = lock_counter(conn)
    dead = (records_t.c.deleted.is_(True)) & (records_t.c.updated_at_ms < older_than_ms)
    top_records = conn.execute(select(func.max(records_t.c.version)).where(dead)).scalar()
    old_evictions = evictions_t.c.created_at_ms < older_than_ms
    top_evictions = conn.execute(
        select(func.max(evictions_t.c.version)).where(old_evictions)
    ).scalar()
    tombstones = conn.execute(delete(records_t).where(dead)).rowcount
    evicted = conn.execute(delete(evictions_t).where(old_evictions)).rowcount
    state.purge_horizon = max(state.purge_horizon, int(top_records or 0), int(top_evictions or 0))
    conn.execute(
        insert(audit_t).values(
            at_ms=now_ms,
            action="admin.purge_tombstones",
            details=json.dumps(
                {"tombstones": tombstones, "evictions": evicted, "horizon": state.purge_horizon}
            ),
        )
    )
    store_counter(conn, state)
    return PurgeResult(int(tombstones or 0), int(evicted or 0), state.purge_horizon)
