"""FastAPI dependencies and their ``Annotated`` aliases, in one place.

``SessionDep`` — a database session per request; ``CurrentAuth`` — the verified caller
(user + device + scope); ``CurrentUser`` / ``CurrentDevice`` — its parts. Verifying a
caller checks the token's signature and expiry, loads the device and user rows in one
query, and :func:`check_token` holds the token against them: a revoked device is
refused on its very next request (``device_revoked``, with the wipe flag) and a token
issued before a logout, password reset or deactivation is refused at once, on every
instance. Dependencies only read: a write here would take locks before the sync
engine's counter lock and could deadlock with it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials
from sqlalchemy import select
from sqlalchemy.orm import Session

from .accounts import Principal, principal_for
from .auth import AccessClaims
from .context import ServerContext
from .errors import DeviceRevoked, Unauthorized
from .models import Device, User
from .openapi import BEARER


async def get_context(request: Request) -> ServerContext:
    # async: a plain attribute read, not worth a hop to the threadpool
    context: ServerContext = request.app.state.fieldsync
    return context


ContextDep = Annotated[ServerContext, Depends(get_context)]


def get_session(context: ContextDep) -> Iterator[Session]:
    with context.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


@dataclass(frozen=True, slots=True)
class AuthContext:
    user: User
    device: Device
    principal: Principal


BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("missing bearer access token")
    return token.strip()


_bearer = bearer_token  # the live endpoint's name for it


def check_token(claims: AccessClaims, user: User, device: Device) -> None:
    """Whether a signed, unexpired token still speaks for ``user`` on ``device``.

    The one place revocation is decided (the pull path remembers a success while the
    auth generation stands still: :mod:`server.authcache`): the device must not be revoked, the user must be active and own the
    device, and the token's generations must be the rows' current ones — a logout or
    revocation raises the device's, a password reset or deactivation the user's.
    """
    if device.revoked_at is not None:
        raise DeviceRevoked(wipe=bool(device.wipe))
    if not user.active or user.id != claims.user_id or device.user_id != user.id:
        raise Unauthorized("the account or device is no longer valid")
    if claims.user_generation != (user.token_generation or 0) or claims.device_generation != (
        device.token_generation or 0
    ):
        raise Unauthorized("this session was signed out; sign in again")


async def signed_claims(request: Request, _scheme: BearerDep = None) -> AccessClaims:
    """The token's claims, signature and expiry checked — not yet held against the rows
    (the pull path does that itself, :mod:`server.authcache`). async: an HMAC, no hop;
    answered before the body is validated, like :func:`get_auth`."""
    context: ServerContext = request.app.state.fieldsync
    return context.signer.verify(bearer_token(request))


SignedClaims = Annotated[AccessClaims, Depends(signed_claims)]


def get_auth(
    request: Request,
    context: ContextDep,
    session: SessionDep,
    _scheme: BearerDep = None,  # FastAPI fills it; direct callers need not
) -> AuthContext:
    """The verified caller. Declared through the ``bearerAuth`` security scheme
    (:data:`server.openapi.BEARER`), so every signed-in route documents it."""
    claims = context.signer.verify(bearer_token(request))
    user, device = load_caller(session, claims)
    request.state.device_id = device.id  # errors answered from here on are the device's
    check_token(claims, user, device)
    return AuthContext(user, device, principal_for(session, user, device.id))


def load_caller(session: Session, claims: AccessClaims) -> tuple[User, Device]:
    """The token's user and device rows, in one round trip (``unknown device`` if none)."""
    row = session.execute(
        select(Device, User)
        .join(User, User.id == Device.user_id)
        .where(Device.id == claims.device_id)
    ).one_or_none()
    if row is None:
        raise Unauthorized("unknown device")
    device, user = row
    return user, device


CurrentAuth = Annotated[AuthContext, Depends(get_auth)]


def get_current_user(auth: CurrentAuth) -> User:
    return auth.user


def get_current_device(auth: CurrentAuth) -> Device:
    return auth.device


CurrentUser = Annotated[User, Depends(get_current_user)]
CurrentDevice = Annotated[Device, Depends(get_current_device)]
