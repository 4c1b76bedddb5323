"""API keys for systems (ERP, finance, e-mail): hashed, scoped, revocable, audited.

A key is ``fsk_<key id>_<secret>``: the id names it in logs and lists, the secret is 32
random bytes. Only the SHA-256 of the whole key is stored (a high-entropy secret needs
no slow hash: nobody can guess it, and the hash alone signs nothing in).

Each key speaks for its own **service-account user** — a ``users`` row with the key's
role (``manager`` of one team, or ``admin``), a team, and no usable password (its hash
is not an argon2 hash, so a sign-in with any password fails) — plus a ``devices`` row
``apikey-<id>``. Presenting the key therefore yields the same
:class:`~server.deps.AuthContext` as a manager's token: the manager API, reports and the
change feed apply every scope rule unchanged, and writes are audited under the service
user like any other. ``read`` keys may only ``GET``.

Revoking a key deactivates its service user and revokes its device in the same
transaction, so a revoked key is refused on its very next request on every instance.
Creation and revocation go to the audit log (``apikey.create``, ``apikey.revoke``);
use is recorded as ``last_used_at_ms`` and an ``apikey.use`` audit row at most once a
minute per key.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from dataclasses import dataclass
from typing import Literal

import sqlalchemy.exc
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from sync_protocol.hlc import wall_clock_ms

from ..accounts import audit, principal_for, utcnow
from ..context import ServerContext
from ..deps import AuthContext
from ..errors import Forbidden, NotFound, Unauthorized
from ..models import AuditEntry, Device, Team, User
from .models import ApiKey

log = logging.getLogger("fieldsync.integration")

PREFIX = "fsk_"
_KEY = re.compile(r"^fsk_([0-9a-f]{16})_([A-Za-z0-9_-]{20,100})$")
#: The password hash of a service account: not an argon2 hash, so no password matches.
NO_PASSWORD = "!service-account"
#: How often a key's use is written down (``last_used_at_ms``, ``apikey.use``).
USE_RESOLUTION_MS = 60_000
KeyRole = Literal["manager", "admin"]
KeyAccess = Literal["read", "write"]
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def looks_like_key(token: str) -> bool:
    return token.startswith(PREFIX)


@dataclass(frozen=True, slots=True)
class NewKey:
    """A created key: ``key`` is shown once and never stored."""

    row: ApiKey
    key: str
    user: User


def create_api_key(
    session: Session,
    creator: AuthContext,
    *,
    name: str,
    role: KeyRole,
    team_id: str | None,
    access: KeyAccess,
) -> NewKey:
    """A key for a system, acting as a new service account of ``role`` in ``team_id``.

    Admins only (checked by the route). A ``manager`` key needs a team; an ``admin`` key
    sees everything and takes none."""
    if role == "manager":
        if team_id is None or session.get(Team, team_id) is None:
            raise NotFound(f"no team {team_id!r}", details={"team_id": team_id})
    elif team_id is not None:
        raise Forbidden("an admin key belongs to no team; leave team_id out")
    key_id = secrets.token_hex(8)
    key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    now = wall_clock_ms()
    user = User(
        id=f"svc-{key_id}",
        username=f"svc-{key_id}",
        display_name=f"{name} (API key)",
        role=role,
        team_id=team_id,
        password_hash=NO_PASSWORD,
        active=True,
        created_at=utcnow(),
    )
    session.add(user)
    session.flush()
    session.add(
        Device(
            id=device_id_of(key_id),
            user_id=user.id,
            name=name[:128],
            platform="api-key",
            created_at=utcnow(),
        )
    )
    row = ApiKey(
        id=key_id,
        name=name,
        key_hash=key_hash(key),
        user_id=user.id,
        access=access,
        created_by=creator.user.id,
        created_at_ms=now,
    )
    session.add(row)
    audit(
        session,
        "apikey.create",
        user_id=creator.user.id,
        device_id=creator.device.id,
        target=key_id,
        details={"name": name, "role": role, "team_id": team_id, "access": access},
    )
    session.flush()
    return NewKey(row, key, user)


def device_id_of(key_id: str) -> str:
    return f"apikey-{key_id}"


def revoke_api_key(session: Session, creator: AuthContext, key_id: str) -> ApiKey:
    """Revoke a key at once: the key row, its service user and its device."""
    row = session.get(ApiKey, key_id)
    if row is None:
        raise NotFound(f"no API key {key_id!r}", details={"key_id": key_id})
    if row.revoked_at_ms is None:
        row.revoked_at_ms = wall_clock_ms()
        user = session.get(User, row.user_id)
        if user is not None:
            user.active = False
            user.token_generation = (user.token_generation or 0) + 1
        device = session.get(Device, device_id_of(key_id))
        if device is not None and device.revoked_at is None:
            device.revoked_at = utcnow()
        audit(
            session,
            "apikey.revoke",
            user_id=creator.user.id,
            device_id=creator.device.id,
            target=key_id,
            details={"name": row.name},
        )
    session.flush()
    return row


def authenticate_key(
    token: str, method: str, context: ServerContext, session: Session
) -> AuthContext:
    """The caller a key speaks for, or ``unauthorized`` (unknown, malformed or revoked
    key: one answer for all, so nothing is learned by probing)."""
    if _KEY.match(token) is None:
        raise Unauthorized("invalid API key")
    found = session.execute(
        select(ApiKey, User, Device)
        .join(User, User.id == ApiKey.user_id)
        .join(Device, Device.user_id == User.id)
        .where(ApiKey.key_hash == key_hash(token))
    ).first()
    if found is None:
        raise Unauthorized("invalid API key")
    row, user, device = found
    if (
        row.revoked_at_ms is not None
        or not user.active
        or device.revoked_at is not None
        or device.id != device_id_of(row.id)
    ):
        raise Unauthorized("invalid API key")
    if row.access != "write" and method.upper() not in READ_METHODS:
        raise Forbidden("this API key may only read", details={"key_id": row.id})
    _note_use(context, row)
    return AuthContext(user, device, principal_for(session, user, device.id))


def _note_use(context: ServerContext, row: ApiKey) -> None:
    """``last_used_at_ms`` and an ``apikey.use`` audit row, at most once a minute, in a
    short transaction of its own (dependencies must not take locks in the request's)."""
    now = wall_clock_ms()
    if row.last_used_at_ms is not None and now - row.last_used_at_ms < USE_RESOLUTION_MS:
        return
    try:
        with context.engine.begin() as conn:
            changed = conn.execute(
                update(ApiKey)
                .where(ApiKey.id == row.id)
                .where(
                    (ApiKey.last_used_at_ms.is_(None))
                    | (ApiKey.last_used_at_ms < now - USE_RESOLUTION_MS)
                )
                .values(last_used_at_ms=now)
            ).rowcount
            if changed:
                conn.execute(
                    insert(AuditEntry).values(
                        at_ms=now,
                        user_id=row.user_id,
                        device_id=device_id_of(row.id),
                        action="apikey.use",
                        target=row.id,
                    )
                )
    except sqlalchemy.exc.OperationalError:  # advisory only: never fail the request for it
        log.warning("could not record the use of API key %s", row.id)


__all__ = [
    "NO_PASSWORD",
    "PREFIX",
    "KeyAccess",
    "KeyRole",
    "NewKey",
    "authenticate_key",
    "create_api_key",
    "key_hash",
    "looks_like_key",
    "revoke_api_key",
]
