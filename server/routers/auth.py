"""``/v1/auth``: login (registers the device), refresh (rotates), logout."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

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


@router.post("/login", response_model=TokenResponse)
def login(
    body: LoginRequest, request: Request, context: ContextDep, session: SessionDep
) -> TokenResponse:
    """Password (+ TOTP when enabled) → access + refresh token bound to ``device_id``."""
    address = _address(request)
    # Counts the attempt and reserves a failure *before* the password is checked, in
    # the database: every process and instance shares the limit (server.throttle).
    context.throttle.check(body.username, address)

    def fail(reason: str, user_id: str | None, message: str = _BAD_CREDENTIALS) -> Unauthorized:
        audit(
            session,
            "login.failure",
            user_id=user_id,
            device_id=body.device_id,
            target=f"users/{body.username}"[:200],
            details={"reason": reason},
            address=address,
        )
        session.commit()
        return Unauthorized(message)

    user = user_by_username(session, body.username)
    if user is None or not user.active:
        burn_password_check(body.password)
        raise fail("unknown_user" if user is None else "inactive", user.id if user else None)
    if body.password == DEMO_PASSWORD and not context.settings.demo_password_allowed:
        raise fail(
            "demo_password",
            user.id,
            "the demo password is only accepted in development; set a real password",
        )
    if not verify_password(user.password_hash, body.password):
        raise fail("password", user.id)
    if user.totp_secret:
        if body.totp is None:
            context.throttle.release(body.username)
            raise TotpRequired("this account needs the 6-digit code from the authenticator app")
        step = totp_step(user.totp_secret, body.totp)
        if step is None:
            raise fail("totp", user.id, "wrong one-time code")
        if not accept_totp_step(context.engine, user.id, step):
            raise fail("totp_replay", user.id, "this one-time code was already used")
    context.throttle.record_success(body.username)
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


@router.post("/refresh", response_model=TokenResponse)
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
