"""What an ownership move outside a push keeps true: the search table's owner copy and
the webhooks' ``record.changed``.

A push keeps both from its flush (:class:`server.crm.CrmRules`). Two server operations
give records a new version without a push, and call in here in their transaction:

* a **reassignment** (:func:`server.repository.admin.reassign_customers` and its
  siblings; a merge's first step is one) changes ``owner_id`` → :func:`records_moved`;
* a **team move** (:func:`server.manager.team_moves.rescope_after_move`) re-versions
  records whose owner is unchanged, so the devices that now see them pull them →
  :func:`records_reversioned` (webhooks of the new team hear of them the same way).

Imported lazily by those callers: :mod:`server.repository` must not import the CRM at
module level (the CRM's rules import the repository).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection

from ..integration.events import write_record_events
from .indexing import move_search_owner


def records_moved(
    conn: Connection, moved: Sequence[tuple[int, str, str]], owner_id: str, now_ms: int
) -> None:
    """``moved`` — (primary key, collection, record_id) of each record now owned by
    ``owner_id`` (stored already, with its new version)."""
    move_search_owner(conn, [(c, r) for _, c, r in moved], owner_id)
    write_record_events(conn, [pk for pk, _, _ in moved], now_ms)


def records_reversioned(conn: Connection, pks: Sequence[int], now_ms: int) -> None:
    """Records given a new version by a team move (owner unchanged)."""
    write_record_events(conn, pks, now_ms)


__all__ = ["records_moved", "records_reversioned"]
