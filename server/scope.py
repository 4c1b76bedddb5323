"""Who sees what: the one place the sync server decides a record's visibility.

Every stored record carries two placement columns, set on each write from the entity's
declared :class:`~sync_protocol.Scope`:

* ``owner_id`` — whose record it is: a user id (``owner``; and, inherited, ``parent``),
  ``team:<team id>`` (``team``: the writer's team), or ``NULL`` (``reference``: everyone);
* ``customer_id`` — the *root* of a parent chain: for a record of a collection others
  inherit from, its own id; for a ``parent``-scoped record, the root of its parent (so
  reassigning the root moves the whole chain).

A reader sees a record when :func:`sees_owner` says so for its ``owner_id``: admins see
everything; a rep sees their own records, their team's and reference data; a manager
also sees every member of the team they lead. **Grants** add single records to one
user's view: a record whose granting field (:data:`GRANTING_FIELDS` — a ticket's
``assignee_id``) names a user is also that user's, to read, whoever owns it — so a
ticket assigned to a service agent of another team reaches the agent's phone. Grants
are stored in ``record_grants`` (kept by the CRM flush, :mod:`server.crm.grants`) and
pull reads them as one more stream (:data:`GRANTED_PULL`); writes keep the owner rule
(the agent works the ticket through ``/v1/tickets/{id}/progress``). :func:`visible_owners` is the same rule as
the list of ``owner_id`` values a pull scans (one index range per value),
:func:`owner_filter` the same as a SQL condition, and :func:`place` computes the columns of a write, refusing one that would leave the
writer's scope. Push, pull, the backlog count, live events, conflicts, attachments, reassignment
evictions, the manager's record lists and the reports all ask here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy import ColumnElement, or_, true

from sync_protocol import EntitySchema, SchemaRegistry, Scope

#: ``owner_id`` of a team-wide record: this prefix and the team id.
TEAM_PREFIX = "team:"


class Viewer(Protocol):
    """The caller (:class:`server.accounts.Principal`)."""

    @property
    def user_id(self) -> str: ...

    @property
    def role(self) -> str: ...

    @property
    def team_id(self) -> str | None: ...

    @property
    def team_member_ids(self) -> frozenset[str]: ...


class Placed(Protocol):
    """A stored record's placement columns."""

    @property
    def owner_id(self) -> str | None: ...

    @property
    def customer_id(self) -> str | None: ...


class OutOfScope(Exception):
    """A write that would touch or create a record outside the writer's scope."""

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


#: Collections whose records are also visible to the user a field names: collection →
#: field. The record reaches that user's devices (read only) besides its owner's scope.
GRANTING_FIELDS: dict[str, str] = {"tickets": "assignee_id"}

#: Pull's stream of a user's granted records (placeholders as the pull queries':
#: ``{user} {since} {high} {n}``; columns as theirs: version, collection, record_id,
#: deleted, data). A granted record the user also sees by owner comes twice with one
#: version: pull keeps one.
GRANTED_PULL = (
    "SELECT r.version, r.collection, r.record_id, r.deleted, r.data FROM record_grants g "
    "JOIN records r ON r.collection = g.collection AND r.record_id = g.record_id "
    "WHERE g.user_id = {user} AND r.version > {since} AND r.version <= {high} "
    "ORDER BY r.version LIMIT {n}"
)


def granted_to(collection: str, fields: dict[str, Any]) -> str | None:
    """The user a record of ``collection`` with ``fields`` is granted to, if any."""
    field = GRANTING_FIELDS.get(collection)
    value = fields.get(field) if field is not None else None
    return value if isinstance(value, str) and value else None


def uses_grants(viewer: Viewer) -> bool:
    """Whether grants can add anything to ``viewer``'s view (an admin sees it all)."""
    return viewer.role != "admin"


def team_owner(team_id: str) -> str:
    """The ``owner_id`` of the team-wide records of ``team_id``."""
    return f"{TEAM_PREFIX}{team_id}"


def sees_owner(viewer: Viewer, owner_id: str | None) -> bool:
    """Whether records with this ``owner_id`` (None: reference data) are visible."""
    if owner_id is None or viewer.role == "admin":
        return True
    if owner_id.startswith(TEAM_PREFIX):
        return viewer.team_id is not None and owner_id == team_owner(viewer.team_id)
    if viewer.role == "manager":
        return owner_id == viewer.user_id or owner_id in viewer.team_member_ids
    return owner_id == viewer.user_id


def visible_owners(viewer: Viewer) -> list[str] | None:
    """Every ``owner_id`` whose records the viewer sees, besides reference data (which
    everyone sees); ``None`` means everything (admin)."""
    if viewer.role == "admin":
        return None
    if viewer.role == "manager":
        owners = sorted(viewer.team_member_ids | {viewer.user_id})
    else:
        owners = [viewer.user_id]
    if viewer.team_id is not None:
        owners.append(team_owner(viewer.team_id))
    return owners


def owner_filter(viewer: Viewer, owner_id: Any) -> ColumnElement[bool]:
    """:func:`sees_owner` as SQL over an ``owner_id`` column (reports, manager lists)."""
    owners = visible_owners(viewer)
    if owners is None:
        return true()
    return or_(owner_id.is_(None), owner_id.in_(owners))


def place(
    schema: SchemaRegistry,
    entity: EntitySchema,
    viewer: Viewer,
    record_id: str,
    fields: dict[str, Any],
    current: Placed | None,
    lookup: Callable[[str, str], Placed | None],
    *,
    owner_settable: bool,
) -> tuple[str | None, str | None]:
    """``(owner_id, customer_id)`` of a record after a write of ``fields``.

    ``current`` is the stored record (None for an insert), ``lookup(collection, id)``
    finds a parent, ``owner_settable`` says whether the writer may choose the owner of
    a new ``owner``-scoped record. Fills the owner field of a new ``owner``-scoped
    record. Raises :class:`OutOfScope` when the writer may not see the record as it is
    or as it would be.
    """
    if current is not None:
        _check(viewer, current.owner_id)
    root = record_id if entity.name in schema.parents() else None
    parent = entity.parent_collection
    if parent is not None:
        return _inherit(schema, entity, viewer, parent, fields, current, lookup)
    if entity.scope is Scope.REFERENCE:
        return None, root
    if entity.scope is Scope.TEAM:
        if current is not None and current.owner_id is not None:
            return current.owner_id, root
        if viewer.team_id is None:
            raise OutOfScope("team-wide records need a team; this account has none")
        return team_owner(viewer.team_id), root
    # Scope.OWNER
    owner_field = entity.owner_field
    spec = entity.fields.get(owner_field)
    if current is None:
        chosen = fields.get(owner_field)
        if spec is not None and owner_settable and chosen is not None:
            owner = str(chosen)
        else:
            owner = viewer.user_id
            if spec is not None:
                fields[owner_field] = owner
    elif owner_field in fields:
        owner = str(fields[owner_field])
    else:
        owner = current.owner_id or viewer.user_id
    _check(viewer, owner)
    return owner, root


def _inherit(
    schema: SchemaRegistry,
    entity: EntitySchema,
    viewer: Viewer,
    parent: str,
    fields: dict[str, Any],
    current: Placed | None,
    lookup: Callable[[str, str], Placed | None],
) -> tuple[str | None, str | None]:
    """A ``parent``-scoped record: the parent's owner, and the root of its chain."""
    parent_id = fields.get(entity.parent_field)
    if parent_id is None and current is not None:
        parent_id = current.customer_id if _is_root(schema, parent) else None
        if parent_id is None:
            # nested chain: the stored parent id is in the record (not changed now)
            return current.owner_id, current.customer_id
    row = lookup(parent, str(parent_id)) if parent_id else None
    if row is None or not sees_owner(viewer, row.owner_id):
        what = "customer" if entity.scope is Scope.CUSTOMER else f"parent record ({parent})"
        raise OutOfScope(
            f"the {what} is unknown or outside your scope", {entity.parent_field: parent_id}
        )
    root = str(parent_id) if _is_root(schema, parent) else row.customer_id
    return row.owner_id, root


def _is_root(schema: SchemaRegistry, collection: str) -> bool:
    """Whether records of ``collection`` are the root of their chain (not inheriting)."""
    entity = schema.get(collection)
    return entity is None or entity.parent_collection is None


def _check(viewer: Viewer, owner_id: str | None) -> None:
    if not sees_owner(viewer, owner_id):
        raise OutOfScope("this record is outside your scope")
