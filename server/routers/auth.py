"""``/v1/auth``: login (registers the device), refresh (rotates), logout."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from sqlalchemy.orm import Session

from sync_protocol import LoginRequest, RefreshRequest, TokenResponse, UserInfo

from ..accounts import (
    accept_totp_step,
    audit,
    issue_refresh_token,
    register_device,
    revoke_refresh_tokens,
    rotate_refresh_token,
    user_by_username,
)
from ..auth import burn_password_check, totp_step, verify_password
from ..context import ServerContext
from ..deps import ContextDep, CurrentAuth, SessionDep
from ..errors import DeviceIdTaken, TotpRequired, Unauthorized
from ..models import Device, User
from ..openapi import error_responses
from ..settings import DEMO_PASSWORD

router = APIRouter(prefix="/v1/auth", tags=["auth"])

_BAD_CREDENTIALS = "wrong username or password"


def _user_info(user: User) -> UserInfo:
    return UserInfo(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=user.role,  # type: ignore[arg-type]
        team_id=user.team_id,
    )


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def authenticate(
    session: Session,
    context: ServerContext,
    *,
    username: str,
    password: str,
    totp: str | None,
    address: str,
    device_id: str | None,
) -> User:
    """The sign-in rules, shared by ``/v1/auth/login`` and the browser console: rate
    limits, the password (the demo one only in development), then TOTP when enrolled.

    The attempt is counted and a failure reserved *before* the password is checked, in
    the database, so every process and instance shares the limit (:mod:`server.throttle`);
    a failure is audited and committed before the error is raised; a correct password
    without the code answers :class:`TotpRequired` (not a failure). A one-time code is
    accepted once.
    """
    context.throttle.check(username, address)

    def fail(reason: str, user_id: str | None, message: str = _BAD_CREDENTIALS) -> Unauthorized:
        audit(
            session,
            "login.failure",
            user_id=user_id,
            device_id=device_id,
            target=f"users/{username}"[:200],
            details={"reason": reason},
            address=address,
        )
        session.commit()
        return Unauthorized(message)

    user = user_by_username(session, username)
    if user is None or not user.active:
        burn_password_check(password)
        raise fail("unknown_user" if user is None else "inactive", user.id if user else None)
    if password == DEMO_PASSWORD and not context.settings.demo_password_allowed:
        raise fail(
            "demo_password",
            user.id,
            "the demo password is only accepted in development; set a real password",
        )
    if not verify_password(user.password_hash, password):
        raise fail("password", user.id)
    if user.totp_secret:
        if totp is None:
            context.throttle.release(username)
            raise TotpRequired("this account needs the 6-digit code from the authenticator app")
        step = totp_step(user.totp_secret, totp)
        if step is None:
            raise fail("totp", user.id, "wrong one-time code")
        if not accept_totp_step(context.engine, user.id, step):
            raise fail("totp_replay", user.id, "this one-time code was already used")
    context.throttle.record_success(username)
    return user


@router.post("/login", response_model=TokenResponse, responses=error_responses(401, 409, 429))
def login(
    body: LoginRequest, request: Request, context: ContextDep, session: SessionDep
) -> TokenResponse:
    """Password (+ TOTP when enabled) → access + refresh token bound to ``device_id``."""
    address = _address(request)
    user = authenticate(
        session,
        context,
        username=body.username,
        password=body.password,
        totp=body.totp,
        address=address,
        device_id=body.device_id,
    )
    try:
        device = register_device(
            session,
            user,
            device_id=body.device_id,
            name=body.device_name,
            platform=body.platform,
            app_version=body.app_version,
        )
    except DeviceIdTaken:
        session.rollback()
        audit(
            session,
            "login.device_id_taken",
            user_id=user.id,
            device_id=body.device_id,
            target=f"devices/{body.device_id}",
            address=address,
        )
        session.commit()
        raise
    refresh = issue_refresh_token(session, user.id, device.id, context.settings.refresh_token_ttl_s)
    audit(
        session,
        "login.success",
        user_id=user.id,
        device_id=device.id,
        target=f"users/{user.username}"[:200],
        address=address,
    )
    session.commit()
    return _tokens(context, user, device, refresh)


def _tokens(context: ServerContext, user: User, device: Device, refresh: str) -> TokenResponse:
    return TokenResponse(
        access_token=context.signer.issue(
            user.id,
            device.id,
            user_generation=user.token_generation or 0,
            device_generation=device.token_generation or 0,
        ),
        refresh_token=refresh,
        expires_in=context.settings.access_token_ttl_s,
        user=_user_info(user),
    )


@router.post("/refresh", response_model=TokenResponse, responses=error_responses(401, 403))
def refresh(body: RefreshRequest, context: ContextDep, session: SessionDep) -> TokenResponse:
    """Exchange a refresh token for a new pair; the old refresh token stops working."""
    settings = context.settings
    user, device, new_refresh = rotate_refresh_token(
        session,
        body.refresh_token,
        body.device_id,
        settings.refresh_token_ttl_s,
        lease_s=settings.offline_lease_days * 86_400,
    )
    session.commit()
    return _tokens(context, user, device, new_refresh)


@router.post("/logout", status_code=204)
def logout(auth: CurrentAuth, session: SessionDep) -> Response:
    """Sign this device out: its refresh tokens and its access tokens stop working at
    once, on every server instance."""
    revoke_refresh_tokens(session, auth.device.id)
    auth.device.token_generation = (auth.device.token_generation or 0) + 1
    audit(session, "logout", user_id=auth.user.id, device_id=auth.device.id)
    session.commit()
    return Response(status_code=204)
