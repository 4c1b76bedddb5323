"""Noticing this process's own commits, without touching the write paths.

Every writing transaction marks its connection (:data:`~server.repository.state.WROTE`,
set by ``lock_counter``); a session flush that changes what a token is checked against
(device revoked, a generation raised, a user deactivated or moved) marks it
:data:`AUTH`. When the connection goes back to the pool — after the commit, so anything
reading the database from then on sees the change — the marks are taken off and
``announce(wrote, auth)`` is called (in whatever thread returned the connection).
A rolled-back transaction announces too: a wake-up that finds nothing new costs one
small query and no message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, event, inspect
from sqlalchemy.orm import Session, sessionmaker

from ..models import Device, User
from ..repository.state import WROTE

AUTH = "fieldsync.auth_changed"
#: Columns :func:`server.deps.check_token` reads (or a principal is built from).
_DEVICE_FIELDS = ("revoked_at", "wipe", "token_generation", "user_id")
_USER_FIELDS = ("active", "token_generation", "role", "team_id")


def _changed(obj: object, fields: tuple[str, ...]) -> bool:
    attrs = inspect(obj).attrs
    return any(attrs[name].history.has_changes() for name in fields)


def _touches_auth(session: Session) -> bool:
    for obj in session.dirty:
        if isinstance(obj, Device) and _changed(obj, _DEVICE_FIELDS):
            return True
        if isinstance(obj, User) and _changed(obj, _USER_FIELDS):
            return True
    return any(isinstance(obj, Device | User) for obj in session.deleted)


def install(
    engine: Engine, sessions: sessionmaker[Session], announce: Callable[[bool, bool], None]
) -> Callable[[], None]:
    """Hook ``engine`` and ``sessions``; returns a function that unhooks them."""

    def after_flush(session: Session, _context: Any) -> None:
        if _touches_auth(session):
            session.connection().info[AUTH] = True

    def checkin(_dbapi: Any, record: Any) -> None:
        info = getattr(record, "info", None)
        if not info:
            return
        wrote = bool(info.pop(WROTE, False))
        auth = bool(info.pop(AUTH, False))
        if wrote or auth:
            announce(wrote, auth)

    event.listen(sessions, "after_flush", after_flush)
    event.listen(engine, "checkin", checkin)

    def remove() -> None:
        event.remove(sessions, "after_flush", after_flush)
        event.remove(engine, "checkin", checkin)

    return remove
