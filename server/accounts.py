"""Users, teams, devices and refresh tokens (the non-sync SQL), plus the audit writer.

A :class:`Principal` is what the sync engine needs to know about the caller: role, and
for a manager the ids of the team's members (the owners whose records the manager sees).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Engine, Table, select, update
from sqlalchemy.orm import Session

from .auth import hash_password, hash_refresh_token, new_refresh_token
from .errors import DeviceIdTaken, DeviceRevoked, LeaseExpired, Unauthorized
from .models import ROLES, AuditEntry, Device, RefreshToken, Team, User
from .scope import sees_owner


def utcnow() -> datetime:
    return datetime.now(UTC)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _aware(dt: datetime) -> datetime:
    """SQLite returns naive datetimes; they were stored as UTC."""
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller as the sync engine sees it."""

    user_id: str
    role: str
    team_id: str | None = None
    #: For a manager: every member of the team they lead (themselves included).
    team_member_ids: frozenset[str] = field(default_factory=frozenset)
    device_id: str | None = None

    def sees_owner(self, owner_id: str | None) -> bool:
        """Whether records owned by ``owner_id`` (None: reference data) are visible
        (the rule is :func:`server.scope.sees_owner`)."""
        return sees_owner(self, owner_id)


def managed_team_id(session: Session, user: User) -> str | None:
    """The team a manager leads (by ``teams.manager_id``), else their own team."""
    led = session.scalar(select(Team.id).where(Team.manager_id == user.id).limit(1))
    return led or user.team_id


def team_member_ids(session: Session, team_id: str | None) -> frozenset[str]:
    if team_id is None:
        return frozenset()
    return frozenset(session.scalars(select(User.id).where(User.team_id == team_id)))


def principal_for(session: Session, user: User, device_id: str | None = None) -> Principal:
    if user.role == "manager":
        team = managed_team_id(session, user)
        return Principal(user.id, user.role, team, team_member_ids(session, team), device_id)
    return Principal(user.id, user.role, user.team_id, frozenset(), device_id)


def create_team(session: Session, name: str, *, team_id: str | None = None) -> Team:
    team = Team(id=team_id or f"team-{uuid.uuid4().hex[:12]}", name=name, created_at=utcnow())
    session.add(team)
    session.flush()
    return team


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    role: str = "rep",
    team_id: str | None = None,
    display_name: str | None = None,
    user_id: str | None = None,
    totp_secret: str | None = None,
    password_hash: str | None = None,
) -> User:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    user = User(
        id=user_id or f"u-{uuid.uuid4().hex[:12]}",
        username=username,
        display_name=display_name or username,
        role=role,
        team_id=team_id,
        password_hash=password_hash or hash_password(password),
        totp_secret=totp_secret,
        active=True,
        created_at=utcnow(),
    )
    session.add(user)
    session.flush()
    if role == "manager" and team_id is not None:
        team = session.get(Team, team_id)
        if team is not None and team.manager_id is None:
            team.manager_id = user.id
    return user


def user_by_username(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username))


def register_device(
    session: Session,
    user: User,
    *,
    device_id: str,
    name: str | None,
    platform: str | None,
    app_version: str | None,
    protocol: int | None = None,
) -> Device:
    """Create or refresh the device row of ``user``.

    A device id belongs to the user who registered it first: another user presenting
    it is refused (``device_id_taken``) — never handed the device, its sessions or its
    audit trail. A revoked device cannot sign in again.
    """
    device = session.get(Device, device_id)
    now = utcnow()
    if device is None:
        device = Device(id=device_id, user_id=user.id, created_at=now, wipe=False)
        session.add(device)
    elif device.user_id != user.id:
        raise DeviceIdTaken()
    elif device.revoked_at is not None:
        raise DeviceRevoked(wipe=bool(device.wipe))
    device.name = name or device.name
    device.platform = platform or device.platform
    device.app_version = app_version or device.app_version
    device.protocol = protocol or device.protocol
    device.last_seen = now
    session.flush()
    return device


def revoke_device(session: Session, device_id: str, *, wipe: bool = False) -> Device | None:
    """Stop a device syncing: its refresh tokens die and its access tokens stop working
    on their next request. ``wipe`` also orders it to erase its data (see
    :func:`wipe_device`); without it the device keeps its unsent work."""
    device = session.get(Device, device_id)
    if device is None:
        return None
    if device.revoked_at is None:
        device.revoked_at = utcnow()
    device.wipe = bool(device.wipe) or wipe
    device.token_generation = (device.token_generation or 0) + 1
    revoke_refresh_tokens(session, device_id)
    return device


def wipe_device(session: Session, device_id: str) -> Device | None:
    """Revoke a device (if it is not already) and order it to erase its local data."""
    return revoke_device(session, device_id, wipe=True)


def sign_out_user(session: Session, user: User) -> None:
    """Revoke every token of ``user`` at once: refresh tokens, and (by raising the
    user's token generation) every access token already issued, on every instance."""
    user.token_generation = (user.token_generation or 0) + 1
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user.id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def accept_totp_step(engine: Engine, user_id: str, step: int) -> bool:
    """Record ``step`` as the user's last accepted TOTP step if it is newer than the
    last one: False means the code (or an older one) was already used. One conditional
    UPDATE committed at once on its own connection, so two logins racing with one code
    on two instances accept it once."""
    users = cast(Table, User.__table__)
    with engine.begin() as conn:
        done = conn.execute(
            update(users)
            .where(
                users.c.id == user_id,
                (users.c.totp_last_step.is_(None)) | (users.c.totp_last_step < step),
            )
            .values(totp_last_step=step)
        )
        return bool(done.rowcount == 1)


def issue_refresh_token(session: Session, user_id: str, device_id: str, ttl_s: int) -> str:
    token, digest = new_refresh_token()
    now = utcnow()
    session.add(
        RefreshToken(
            token_hash=digest,
            user_id=user_id,
            device_id=device_id,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl_s),
        )
    )
    return token


def rotate_refresh_token(
    session: Session, token: str, device_id: str, ttl_s: int, *, lease_s: int = 0
) -> tuple[User, Device, str]:
    """Exchange a refresh token for a new one (the old one stops working).

    ``lease_s`` (the offline lease; 0: none): a device silent for longer must sign in
    with the password again (``lease_expired``), as its store has locked itself.
    """
    row = session.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == hash_refresh_token(token))
    )
    if row is None or row.device_id != device_id:
        raise Unauthorized("unknown refresh token")
    device = session.get(Device, row.device_id)
    if device is None:
        raise Unauthorized("unknown device")
    if device.revoked_at is not None:
        raise DeviceRevoked(wipe=bool(device.wipe))
    now = utcnow()
    if row.revoked_at is not None:
        raise Unauthorized("refresh token revoked; sign in again")
    if row.rotated_at is not None:
        # Reuse of a rotated token: someone holds a copy. Cut the whole device off,
        # access tokens included.
        revoke_refresh_tokens(session, device_id)
        device.token_generation = (device.token_generation or 0) + 1
        session.commit()
        raise Unauthorized("refresh token already used; sign in again")
    if _aware(row.expires_at) <= now:
        raise Unauthorized("refresh token expired; sign in again")
    seen = _aware(device.last_seen) if device.last_seen is not None else None
    if lease_s and seen is not None and seen + timedelta(seconds=lease_s) < now:
        raise LeaseExpired(
            "this device was offline longer than the offline lease; sign in with the password",
            details={"last_seen": seen.isoformat(), "offline_lease_s": lease_s},
        )
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        raise Unauthorized("account disabled")
    row.rotated_at = now
    new_token = issue_refresh_token(session, user.id, device_id, ttl_s)
    device.last_seen = now
    return user, device, new_token


def revoke_refresh_tokens(session: Session, device_id: str) -> None:
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.device_id == device_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def audit(
    session: Session,
    action: str,
    *,
    user_id: str | None = None,
    device_id: str | None = None,
    target: str | None = None,
    details: dict[str, Any] | None = None,
    address: str | None = None,
) -> None:
    """Append one audit row (committed with the caller's transaction). Never secrets."""
    session.add(
        AuditEntry(
            at_ms=now_ms(),
            user_id=user_id,
            device_id=device_id,
            action=action,
            target=target,
            details=json.dumps(details, ensure_ascii=False) if details else None,
            address=address,
        )
    )
