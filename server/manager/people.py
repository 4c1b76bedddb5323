"""Users and teams: ``/v1/manager/users``, ``/v1/manager/teams``, ``/v1/admin/teams``.

A manager runs their own team: they create reps in it, edit names, deactivate, reset
passwords and enrol TOTP for its members. Roles and team membership are changed by
admins only — moving a person between teams changes who sees their records, which is an
admin decision. Every change is audit-logged (``manager.*``); secrets (a generated
password, a TOTP secret) are returned once and never logged.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Annotated, Literal

import pyotp
from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select

from sync_protocol import ErrorCode, ProtocolError
from sync_protocol.hlc import wall_clock_ms
from sync_protocol.messages import ID_PATTERN

from ..accounts import audit, create_team, create_user, sign_out_user, user_by_username
from ..auth import hash_password, new_totp_secret
from ..deps import AuthContext, ContextDep, SessionDep
from ..errors import Forbidden, NotFound
from ..models import Team, User
from .common import AdminAuth, ManagerAuth, Page, aware, error_responses
from .team_moves import rescope_after_move, snapshot

router = APIRouter(prefix="/v1/manager", tags=["manager: users and teams"])
admin_router = APIRouter(prefix="/v1/admin", tags=["admin: teams"])

UserId = Annotated[str, Path(pattern=ID_PATTERN)]
Role = Literal["rep", "manager", "admin"]
TOTP_ISSUER = "Fieldsync"


class UserOut(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "u-rep1",
                    "username": "rep1",
                    "display_name": "王芳",
                    "role": "rep",
                    "team_id": "team-east",
                    "active": True,
                    "totp_enabled": False,
                    "created_at": "2026-11-23T09:00:00Z",
                }
            ]
        },
    )

    id: str
    username: str
    display_name: str
    role: str
    team_id: str | None
    active: bool
    totp_enabled: bool
    created_at: datetime


class UserPage(Page):
    items: list[UserOut]


class CreateUser(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"username": "rep3", "password": "a-long-secret-1", "display_name": "赵六"}
            ]
        },
    )

    username: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.@\-]+$")
    password: str = Field(min_length=10, max_length=1024)
    display_name: str | None = Field(default=None, max_length=128)
    role: Role = Field(default="rep", description="Managers may only create reps.")
    team_id: str | None = Field(
        default=None, pattern=ID_PATTERN, description="Default: the manager's own team."
    )


class EditUser(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"display_name": "王芳 (East)"}]}
    )

    display_name: str | None = Field(default=None, min_length=1, max_length=128)
    role: Role | None = Field(default=None, description="Admins only.")
    team_id: str | None = Field(default=None, pattern=ID_PATTERN, description="Admins only.")
    active: bool | None = None


class ResetPassword(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"new_password": None}]}
    )

    new_password: str | None = Field(
        default=None, min_length=10, max_length=1024, description="Omit to generate one."
    )


class PasswordReset(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"user_id": "u-rep1", "temporary_password": "x7…"}]}
    )

    user_id: str
    temporary_password: str | None = Field(
        description="The generated password (shown once); null when you chose one."
    )


class TotpEnrolment(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "user_id": "u-rep1",
                    "secret": "JBSWY3DPEHPK3PXP",
                    "otpauth_uri": "otpauth://totp/Fieldsync:rep1?secret=JBSWY3DPEHPK3PXP"
                    "&issuer=Fieldsync",
                }
            ]
        }
    )

    user_id: str
    secret: str = Field(description="Shown once: put it in the authenticator app.")
    otpauth_uri: str


class TeamOut(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {"id": "team-east", "name": "East", "manager_id": "u-manager", "members": 5}
            ]
        },
    )

    id: str
    name: str
    manager_id: str | None
    members: int


class CreateTeam(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"name": "West", "manager_id": None}]}
    )

    name: str = Field(min_length=1, max_length=128)
    manager_id: str | None = Field(default=None, pattern=ID_PATTERN)


class EditTeam(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"name": "North"}]})

    name: str | None = Field(default=None, min_length=1, max_length=128)
    manager_id: str | None = Field(default=None, pattern=ID_PATTERN)


def user_out(user: User) -> UserOut:
    return UserOut(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=user.role,
        team_id=user.team_id,
        active=bool(user.active),
        totp_enabled=bool(user.totp_secret),
        created_at=aware(user.created_at),
    )


def managed_user(session: SessionDep, auth: AuthContext, user_id: str) -> User:
    """The user, when the caller may manage them (404 otherwise: no probing of ids)."""
    user = session.get(User, user_id)
    if user is None or not auth.principal.sees_owner(user.id):
        raise NotFound(f"no user {user_id!r} in your scope", details={"user_id": user_id})
    if auth.principal.role != "admin" and user.role == "admin":
        raise Forbidden("managers cannot change admins")
    return user


def _log(
    session: SessionDep, auth: AuthContext, action: str, target: str, **details: object
) -> None:
    audit(
        session,
        action,
        user_id=auth.user.id,
        device_id=auth.device.id,
        target=target,
        details=dict(details) or None,
    )


@router.get("/users", response_model=UserPage, responses=error_responses())
def list_users(
    auth: ManagerAuth,
    session: SessionDep,
    role: Annotated[Role | None, Query()] = None,
    active: Annotated[bool | None, Query()] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> UserPage:
    """Your team's members (every user for an admin)."""
    users = [
        u
        for u in session.scalars(select(User).order_by(User.username))
        if auth.principal.sees_owner(u.id)
        and (role is None or u.role == role)
        and (active is None or bool(u.active) == active)
    ]
    return UserPage(
        total=len(users),
        offset=offset,
        limit=limit,
        items=[user_out(u) for u in users[offset : offset + limit]],
    )


@router.post("/users", response_model=UserOut, status_code=201, responses=error_responses(404, 409))
def create_user_route(body: CreateUser, auth: ManagerAuth, session: SessionDep) -> UserOut:
    """Create an account. A manager creates reps in their own team."""
    principal = auth.principal
    team_id = body.team_id
    if principal.role != "admin":
        if body.role != "rep":
            raise Forbidden("managers may only create reps")
        if team_id is not None and team_id != principal.team_id:
            raise Forbidden("managers create users in their own team")
        team_id = principal.team_id
    if team_id is not None and session.get(Team, team_id) is None:
        raise NotFound(f"no team {team_id!r}", details={"team_id": team_id})
    if user_by_username(session, body.username) is not None:
        raise ProtocolError(
            "that username is taken", code=ErrorCode.CONFLICT, details={"username": body.username}
        )
    user = create_user(
        session,
        username=body.username,
        password=body.password,
        role=body.role,
        team_id=team_id,
        display_name=body.display_name,
    )
    _log(session, auth, "manager.user_create", f"users/{user.id}", role=user.role, team=team_id)
    session.commit()
    return user_out(user)


@router.get("/users/{user_id}", response_model=UserOut, responses=error_responses(404))
def get_user(user_id: UserId, auth: ManagerAuth, session: SessionDep) -> UserOut:
    """One member of your team (any user for an admin)."""
    return user_out(managed_user(session, auth, user_id))


@router.patch("/users/{user_id}", response_model=UserOut, responses=error_responses(404))
def edit_user(
    user_id: UserId, body: EditUser, auth: ManagerAuth, context: ContextDep, session: SessionDep
) -> UserOut:
    """Change the display name or active flag; admins also change role and team — the
    phones follow a team or role change (evictions for who no longer sees, new versions
    for who newly sees)."""
    user = managed_user(session, auth, user_id)
    if (body.role is not None or body.team_id is not None) and auth.principal.role != "admin":
        raise Forbidden("only admins change roles and teams")
    if body.team_id is not None and session.get(Team, body.team_id) is None:
        raise NotFound(f"no team {body.team_id!r}", details={"team_id": body.team_id})
    if body.active is False and user.id == auth.user.id:
        raise Forbidden("you cannot deactivate yourself")
    changes = body.model_dump(exclude_none=True)
    moving = (body.team_id is not None and body.team_id != user.team_id) or (
        body.role is not None and body.role != user.role
    )
    before = snapshot(session, user) if moving else None
    if body.team_id is not None and body.team_id != user.team_id:
        # A leader leaves the team they led; a manager arriving at a leaderless team
        # leads it (as at creation, server.accounts.create_user).
        for led in session.scalars(select(Team).where(Team.manager_id == user.id)):
            led.manager_id = None
        arriving = session.get(Team, body.team_id)
        if (body.role or user.role) == "manager" and arriving and arriving.manager_id is None:
            arriving.manager_id = user.id
    for name, value in changes.items():
        setattr(user, name, value)
    if before is not None:  # phones follow: evictions and deliveries (server/manager/team_moves.py)
        moved = rescope_after_move(
            session, user, before, now_ms=wall_clock_ms(), server_hlc=context.clock.now
        )
        changes = {**changes, "reversioned": moved.reversioned, "evictions": moved.evictions}
    if body.active is False:
        _revoke_sessions(session, user)
    _log(session, auth, "manager.user_edit", f"users/{user.id}", changes=changes)
    session.commit()
    return user_out(user)


def _revoke_sessions(session: SessionDep, user: User) -> None:
    """Every token of the user stops working at once, access tokens included."""
    sign_out_user(session, user)


@router.post("/users/{user_id}/deactivate", response_model=UserOut, responses=error_responses(404))
def deactivate_user(user_id: UserId, auth: ManagerAuth, session: SessionDep) -> UserOut:
    """Sign the person out everywhere and refuse further sign-ins. Their customers stay
    theirs until reassigned (``POST /v1/manager/customers/reassign-owner``)."""
    user = managed_user(session, auth, user_id)
    if user.id == auth.user.id:
        raise Forbidden("you cannot deactivate yourself")
    user.active = False
    _revoke_sessions(session, user)
    _log(session, auth, "manager.user_deactivate", f"users/{user.id}")
    session.commit()
    return user_out(user)


@router.post(
    "/users/{user_id}/reset-password",
    response_model=PasswordReset,
    responses=error_responses(404),
)
def reset_password(
    user_id: UserId, body: ResetPassword, auth: ManagerAuth, session: SessionDep
) -> PasswordReset:
    """Set a new password (or generate one, returned once) and sign out every device."""
    user = managed_user(session, auth, user_id)
    generated = None if body.new_password else secrets.token_urlsafe(12)
    user.password_hash = hash_password(body.new_password or generated or "")
    _revoke_sessions(session, user)
    _log(session, auth, "manager.password_reset", f"users/{user.id}")
    session.commit()
    return PasswordReset(user_id=user.id, temporary_password=generated)


@router.post("/users/{user_id}/totp", response_model=TotpEnrolment, responses=error_responses(404))
def enrol_totp(user_id: UserId, auth: ManagerAuth, session: SessionDep) -> TotpEnrolment:
    """Turn on (or renew) the second factor; the secret is shown this once."""
    user = managed_user(session, auth, user_id)
    secret = new_totp_secret()
    user.totp_secret = secret
    _log(session, auth, "manager.totp_enrol", f"users/{user.id}")
    session.commit()
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=TOTP_ISSUER)
    return TotpEnrolment(user_id=user.id, secret=secret, otpauth_uri=str(uri))


@router.delete("/users/{user_id}/totp", response_model=UserOut, responses=error_responses(404))
def remove_totp(user_id: UserId, auth: ManagerAuth, session: SessionDep) -> UserOut:
    """Turn the second factor off (a lost phone)."""
    user = managed_user(session, auth, user_id)
    user.totp_secret = None
    _log(session, auth, "manager.totp_remove", f"users/{user.id}")
    session.commit()
    return user_out(user)


# ---- teams ---------------------------------------------------------------------------


def _team_out(session: SessionDep, team: Team) -> TeamOut:
    members = session.scalar(select(func.count()).select_from(User).where(User.team_id == team.id))
    return TeamOut(id=team.id, name=team.name, manager_id=team.manager_id, members=members or 0)


@router.get("/teams", response_model=list[TeamOut], responses=error_responses())
def list_teams(auth: ManagerAuth, session: SessionDep) -> list[TeamOut]:
    """Your team (every team for an admin)."""
    stmt = select(Team).order_by(Team.name)
    if auth.principal.role != "admin":
        stmt = stmt.where(Team.id == auth.principal.team_id)
    return [_team_out(session, t) for t in session.scalars(stmt)]


def _check_manager(session: SessionDep, manager_id: str | None) -> None:
    if manager_id is None:
        return
    user = session.get(User, manager_id)
    if user is None or user.role not in ("manager", "admin"):
        raise NotFound(f"no manager {manager_id!r}", details={"manager_id": manager_id})


@admin_router.post(
    "/teams", response_model=TeamOut, status_code=201, responses=error_responses(404, 409)
)
def create_team_route(body: CreateTeam, auth: AdminAuth, session: SessionDep) -> TeamOut:
    """Create a team (admins)."""
    if session.scalar(select(Team).where(Team.name == body.name)) is not None:
        raise ProtocolError("a team has that name", code=ErrorCode.CONFLICT)
    _check_manager(session, body.manager_id)
    team = create_team(session, body.name)
    team.manager_id = body.manager_id
    _log(session, auth, "admin.team_create", f"teams/{team.id}", name=body.name)
    session.commit()
    return _team_out(session, team)


@admin_router.patch("/teams/{team_id}", response_model=TeamOut, responses=error_responses(404, 409))
def edit_team(
    team_id: Annotated[str, Path(pattern=ID_PATTERN)],
    body: EditTeam,
    auth: AdminAuth,
    context: ContextDep,
    session: SessionDep,
) -> TeamOut:
    """Rename a team or change who leads it (admins; the leaders' phones follow)."""
    team = session.get(Team, team_id)
    if team is None:
        raise NotFound(f"no team {team_id!r}", details={"team_id": team_id})
    if body.name is not None and body.name != team.name:
        if session.scalar(select(Team).where(Team.name == body.name)) is not None:
            raise ProtocolError("a team has that name", code=ErrorCode.CONFLICT)
        team.name = body.name
    if body.manager_id is not None and body.manager_id != team.manager_id:
        _check_manager(session, body.manager_id)
        leaders = [
            u
            for u in (session.get(User, team.manager_id or ""), session.get(User, body.manager_id))
            if u
        ]
        before = [(u, snapshot(session, u)) for u in leaders]
        team.manager_id = body.manager_id
        for leader, picture in before:  # the old and the new leader's phones follow
            rescope_after_move(
                session, leader, picture, now_ms=wall_clock_ms(), server_hlc=context.clock.now
            )
    _log(session, auth, "admin.team_edit", f"teams/{team.id}", **body.model_dump(exclude_none=True))
    session.commit()
    return _team_out(session, team)
