"""FastAPI dependencies and their ``Annotated`` aliases, in one place.

``SessionDep`` — a database session per request; ``CurrentAuth`` — the verified caller
(user + device + scope); ``CurrentUser`` / ``CurrentDevice`` — its parts. Verifying a
caller checks the token's signature and expiry *and* loads the device, so a revoked
device is refused on its very next request (``device_revoked``, with the wipe flag).
Dependencies only read: a write here would take locks before the sync engine's counter
lock and could deadlock with it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from .accounts import Principal, principal_for
from .context import ServerContext
from .errors import DeviceRevoked, Unauthorized
from .models import Device, User


def get_context(request: Request) -> ServerContext:
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


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("missing bearer access token")
    return token.strip()


def get_auth(request: Request, context: ContextDep, session: SessionDep) -> AuthContext:
    claims = context.signer.verify(_bearer(request))
    # One round trip for both rows: this runs on every request, polls included.
    row = session.execute(
        select(Device, User)
        .join(User, User.id == Device.user_id)
        .where(Device.id == claims.device_id)
    ).one_or_none()
    if row is None:
        raise Unauthorized("unknown device")
    device, user = row
    request.state.device_id = device.id  # errors answered from here on are the device's
    if device.revoked_at is not None:
        raise DeviceRevoked(wipe=device.wipe)
    if not user.active or user.id != claims.user_id:
        raise Unauthorized("the account or device is no longer valid")
    return AuthContext(user, device, principal_for(session, user, device.id))


CurrentAuth = Annotated[AuthContext, Depends(get_auth)]


def get_current_user(auth: CurrentAuth) -> User:
    return auth.user


def get_current_device(auth: CurrentAuth) -> Device:
    return auth.device


CurrentUser = Annotated[User, Depends(get_current_user)]
CurrentDevice = Annotated[Device, Depends(get_current_device)]
