"""Console sign-in: browser sessions on the API's own credentials and revocation rules.

A browser that signs in becomes a **device** of the user (``web-…``, platform ``web``,
remembered by a long-lived ``fs_browser`` cookie so a browser is one device however
often it signs in), and its session is a **refresh-token row** of that device whose
random value lives only in the ``fs_console`` cookie (HttpOnly, SameSite=Lax, Secure
over TLS). So every rule that ends an API session ends a console session too, with no
second implementation: revoking the device, deactivating the user, resetting their
password (all revoke the device's refresh tokens) — and signing out revokes the row.

Each request checks, in one round trip, the row (not revoked, not rotated, not past its
absolute expiry ``console_session_ttl_s``), the device (not revoked, seen within
``console_idle_timeout_s``: idle expiry) and the user (active), then builds the same
:class:`~server.deps.AuthContext` the manager API uses, so pages call the manager
services with the caller's scope.

**CSRF**: every form carries ``csrf_token`` (htmx sends it as ``X-CSRF-Token``), an
HMAC of the session under the server secret; a POST without it, or with another
session's, is refused ``403``. The sign-in form, which has no session yet, uses a
double-submit cookie. The second factor is asked on its own page after the password:
a short-lived signed ``fs_2fa`` cookie carries who passed the password step.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Depends, Request, Response
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from sync_protocol import ErrorCode, ProtocolError

from ..accounts import (
    Principal,
    audit,
    issue_refresh_token,
    principal_for,
    register_device,
)
from ..auth import hash_refresh_token
from ..context import ServerContext
from ..deps import AuthContext, ContextDep, SessionDep
from ..errors import DeviceIdTaken, DeviceRevoked
from ..models import Device, RefreshToken, User

SESSION_COOKIE = "fs_console"
BROWSER_COOKIE = "fs_browser"
PENDING_COOKIE = "fs_2fa"
LOGIN_CSRF_COOKIE = "fs_login_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
PLATFORM = "web"
#: How long the password step stays valid while the second factor is asked.
PENDING_TTL_S = 300
#: ``last_seen`` is written at most this often (a read-mostly console writes little).
_TOUCH_EVERY_S = 60


class SignInRequired(Exception):
    """No valid console session: the page answers a redirect to the sign-in page."""


class CsrfRejected(ProtocolError):
    """A console form was posted without its session's CSRF token."""

    code = ErrorCode.FORBIDDEN


@dataclass(frozen=True, slots=True)
class ConsoleUser:
    """The signed-in manager: the API's auth context plus the session's CSRF token."""

    auth: AuthContext
    csrf: str
    token_hash: str

    @property
    def user(self) -> User:
        return self.auth.user

    @property
    def principal(self) -> Principal:
        return self.auth.principal


def _aware(dt: datetime | None) -> datetime | None:
    return dt if dt is None or dt.tzinfo else dt.replace(tzinfo=UTC)


def _mac(context: ServerContext, purpose: str, text: str) -> str:
    key = hashlib.sha256(f"fieldsync-console-{purpose}:{context.settings.secret_key}".encode())
    return hmac.new(key.digest(), text.encode(), hashlib.sha256).hexdigest()


def csrf_for(context: ServerContext, token_hash: str) -> str:
    return _mac(context, "csrf", token_hash)[:40]


def is_tls(request: Request) -> bool:
    return request.url.scheme == "https"


def set_cookie(
    request: Request, response: Response, name: str, value: str, *, max_age: int | None
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        secure=is_tls(request),
        samesite="lax",
        path="/",
    )


def forget_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(name, path="/", secure=is_tls(request), httponly=True, samesite="lax")


# ---- the sign-in form's own CSRF (no session yet) -------------------------------------


def login_csrf(request: Request) -> str:
    """The double-submit token of the sign-in form (reused while the cookie lives)."""
    return request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)


def check_login_csrf(request: Request, posted: str | None) -> None:
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE)
    if not cookie or not posted or not hmac.compare_digest(cookie, posted):
        raise CsrfRejected("the sign-in form expired; reload the page and try again")


# ---- the password step's hand-over to the second factor --------------------------------


def pending_token(context: ServerContext, user: User, *, now: float | None = None) -> str:
    expires = int((now or time.time()) + PENDING_TTL_S)
    body = f"{user.id}.{expires}"
    return f"{body}.{_mac(context, 'pending', body)}"


def pending_user(session: Session, context: ServerContext, token: str | None) -> User | None:
    """The user who passed the password step, while the hand-over is fresh."""
    if not token or token.count(".") != 2:
        return None
    user_id, expires, mac = token.split(".")
    if not hmac.compare_digest(mac, _mac(context, "pending", f"{user_id}.{expires}")):
        return None
    if not expires.isdigit() or int(expires) < time.time():
        return None
    user = session.get(User, user_id)
    return user if user is not None and user.active else None


# ---- sessions ---------------------------------------------------------------------------


def _browser_name(request: Request) -> str:
    agent = request.headers.get("user-agent", "")
    for marker, name in (
        ("Edg/", "Edge"),
        ("Chrome/", "Chrome"),
        ("Firefox/", "Firefox"),
        ("Safari/", "Safari"),
    ):
        if marker in agent:
            return f"Browser ({name})"
    return "Browser"


def _browser_device(session: Session, request: Request, user: User) -> Device:
    """The browser's device row (a revoked one is replaced by a fresh id)."""
    known = request.cookies.get(BROWSER_COOKIE, "")
    candidates = [known] if known.startswith("web-") and len(known) <= 64 else []
    candidates.append(f"web-{secrets.token_hex(12)}")
    for device_id in candidates:
        try:
            return register_device(
                session,
                user,
                device_id=device_id,
                name=_browser_name(request),
                platform=PLATFORM,
                app_version="console",
            )
        except (DeviceRevoked, DeviceIdTaken):  # another user's browser id: a new one
            continue
    raise AssertionError("a fresh device id cannot be revoked")  # pragma: no cover


def open_session(
    session: Session, context: ServerContext, request: Request, response: Response, user: User
) -> None:
    """Sign ``user`` in on this browser: device, session row, cookies, audit (commits)."""
    device = _browser_device(session, request, user)
    ttl = context.settings.console_session_ttl_s
    token = issue_refresh_token(session, user.id, device.id, ttl)
    audit(
        session,
        "login.success",
        user_id=user.id,
        device_id=device.id,
        target=f"users/{user.username}"[:200],
        details={"via": "console"},
        address=request.client.host if request.client else None,
    )
    session.commit()
    set_cookie(request, response, SESSION_COOKIE, token, max_age=ttl)
    set_cookie(request, response, BROWSER_COOKIE, device.id, max_age=400 * 24 * 3600)
    forget_cookie(request, response, PENDING_COOKIE)
    forget_cookie(request, response, LOGIN_CSRF_COOKIE)


def close_session(session: Session, me: ConsoleUser) -> None:
    """Sign out: this session's row is revoked (other browsers stay signed in)."""
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.token_hash == me.token_hash, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    audit(session, "logout", user_id=me.user.id, device_id=me.auth.device.id)
    session.commit()


def _valid(row: RefreshToken, device: Device, user: User, idle_s: int, now: datetime) -> bool:
    expires = _aware(row.expires_at)
    seen = _aware(device.last_seen)
    return (
        row.revoked_at is None
        and row.rotated_at is None
        and expires is not None
        and expires > now
        and device.revoked_at is None
        and device.platform == PLATFORM
        and device.user_id == user.id
        and bool(user.active)
        and (seen is None or now - seen <= timedelta(seconds=idle_s))
    )


def resolve(request: Request, context: ServerContext, session: Session) -> ConsoleUser | None:
    """The signed-in console user of this request, or ``None``."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > 200:
        return None
    digest = hash_refresh_token(token)
    found = session.execute(
        select(RefreshToken, Device, User)
        .join(Device, Device.id == RefreshToken.device_id)
        .join(User, User.id == RefreshToken.user_id)
        .where(RefreshToken.token_hash == digest)
    ).one_or_none()
    if found is None:
        return None
    row, device, user = found
    now = datetime.now(UTC)
    if not _valid(row, device, user, context.settings.console_idle_timeout_s, now):
        session.rollback()
        return None
    seen = _aware(device.last_seen)
    if seen is None or (now - seen).total_seconds() >= _TOUCH_EVERY_S:
        # Its own short transaction, committed before the page does any work, so no
        # lock is held into the sync engine's writes (see server.deps).
        device.last_seen = now
        session.commit()
    principal = principal_for(session, user, device.id)
    return ConsoleUser(AuthContext(user, device, principal), csrf_for(context, digest), digest)


def current_user(request: Request, context: ContextDep, session: SessionDep) -> ConsoleUser:
    me = resolve(request, context, session)
    if me is None:
        raise SignInRequired()
    if me.principal.role not in ("manager", "admin"):
        raise SignInRequired()
    return me


ConsoleUserDep = Annotated[ConsoleUser, Depends(current_user)]


async def checked_writer(request: Request, me: ConsoleUserDep) -> ConsoleUser:
    """A console user whose POST carries this session's CSRF token."""
    posted = request.headers.get(CSRF_HEADER)
    if posted is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        posted = value if isinstance(value, str) else None
    if not posted or not hmac.compare_digest(posted, me.csrf):
        raise CsrfRejected("this form is missing its security token; reload the page")
    return me


ConsoleWriterDep = Annotated[ConsoleUser, Depends(checked_writer)]
