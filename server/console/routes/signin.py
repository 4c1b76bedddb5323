"""Sign-in (password, then the one-time code when enrolled), sign-out, language switch.

The password step runs the API's own :func:`server.routers.auth.authenticate` (rate
limits, demo-password rule, audit of failures). When the account has TOTP, that
function answers ``TotpRequired`` only *after* the password checked out; the console
then hands over to the code page with a signed, 5-minute ``fs_2fa`` cookie, and the code
is checked under the same limiter (a wrong code counts as a failed sign-in).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import Form, Request, Response
from sqlalchemy.orm import Session

from sync_protocol import ProtocolError

from ...accounts import accept_totp_step, audit, user_by_username
from ...auth import totp_step
from ...context import ServerContext
from ...deps import ContextDep, SessionDep
from ...errors import RateLimited, TotpRequired
from ...models import User
from ...routers.auth import authenticate
from ..i18n import LANG_COOKIE, LANGS, negotiate, translator
from ..session import (
    LOGIN_CSRF_COOKIE,
    PENDING_COOKIE,
    SESSION_COOKIE,
    ConsoleWriterDep,
    check_login_csrf,
    close_session,
    forget_cookie,
    login_csrf,
    open_session,
    pending_token,
    pending_user,
    resolve,
    set_cookie,
)
from ..templating import render
from .common import page_router, safe_next, see_other

router = page_router()
MANAGER_ROLES = ("manager", "admin")
Text = Annotated[str, Form(max_length=1024)]
OptText = Annotated[str | None, Form(max_length=1024)]


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _form_page(
    request: Request,
    template: str,
    next_url: str,
    *,
    error: str = "",
    username: str = "",
    status: int = 200,
) -> Response:
    token = login_csrf(request)
    response = render(
        request,
        template,
        status=status,
        login_token=token,
        next_url=next_url,
        error=error,
        username=username,
    )
    set_cookie(request, response, LOGIN_CSRF_COOKIE, token, max_age=3600)
    return response


@router.get("/login")
def login_form(
    request: Request, context: ContextDep, session: SessionDep, next: str = ""
) -> Response:
    target = safe_next(next)
    me = resolve(request, context, session)
    if me is not None and me.principal.role in MANAGER_ROLES:
        return see_other(target)
    return _form_page(request, "login.html", target)


def _refusal(request: Request, exc: ProtocolError) -> tuple[str, int]:
    t = translator(negotiate(request))
    if isinstance(exc, RateLimited):
        return t("login.rate_limited", seconds=exc.retry_after_s), 429
    if "one-time" in exc.message:
        return t("login.bad_totp"), 401
    return t("login.bad"), 401


def _signed_in(
    request: Request, context: ServerContext, session: Session, user: User, target: str
) -> Response:
    if user.role not in MANAGER_ROLES:
        t = translator(negotiate(request))
        return _form_page(request, "login.html", target, error=t("login.not_manager"), status=403)
    response = see_other(target)
    open_session(session, context, request, response, user)
    return response


@router.post("/login")
def login(
    request: Request,
    context: ContextDep,
    session: SessionDep,
    username: Text,
    password: Text,
    login_token: OptText = None,
    next: OptText = None,
) -> Response:
    target = safe_next(next)
    check_login_csrf(request, login_token)
    try:
        user = authenticate(
            session,
            context,
            username=username,
            password=password,
            totp=None,
            address=_address(request),
            device_id=None,
        )
    except TotpRequired:
        # Raised only once the password checked out: hand over to the code page.
        pending = user_by_username(session, username)
        assert pending is not None
        response = see_other(f"/console/login/code?next={quote(target)}")
        set_cookie(request, response, PENDING_COOKIE, pending_token(context, pending), max_age=300)
        return response
    except ProtocolError as exc:
        message, status = _refusal(request, exc)
        return _form_page(
            request, "login.html", target, error=message, username=username, status=status
        )
    return _signed_in(request, context, session, user, target)


@router.get("/login/code")
def code_form(
    request: Request, context: ContextDep, session: SessionDep, next: str = ""
) -> Response:
    target = safe_next(next)
    if pending_user(session, context, request.cookies.get(PENDING_COOKIE)) is None:
        return see_other(f"/console/login?next={quote(target)}")
    return _form_page(request, "login_code.html", target)


@router.post("/login/code")
def code(
    request: Request,
    context: ContextDep,
    session: SessionDep,
    code: Annotated[str, Form(max_length=12)],
    login_token: OptText = None,
    next: OptText = None,
) -> Response:
    target = safe_next(next)
    check_login_csrf(request, login_token)
    user = pending_user(session, context, request.cookies.get(PENDING_COOKIE))
    if user is None or not user.totp_secret:
        return see_other(f"/console/login?next={quote(target)}")
    address = _address(request)
    t = translator(negotiate(request))
    try:
        context.throttle.check(user.username, address)
    except RateLimited as exc:
        message, status = _refusal(request, exc)
        return _form_page(request, "login_code.html", target, error=message, status=status)
    step = totp_step(user.totp_secret, code.strip())
    # A code is accepted once (the same replay guard as /v1/auth/login).
    if step is None or not accept_totp_step(context.engine, user.id, step):
        audit(
            session,
            "login.failure",
            user_id=user.id,
            target=f"users/{user.username}"[:200],
            details={"reason": "totp" if step is None else "totp_replay", "via": "console"},
            address=address,
        )
        session.commit()
        return _form_page(request, "login_code.html", target, error=t("login.bad_totp"), status=401)
    context.throttle.record_success(user.username)
    return _signed_in(request, context, session, user, target)


@router.post("/logout")
def logout(request: Request, me: ConsoleWriterDep, session: SessionDep) -> Response:
    close_session(session, me)
    response = see_other("/console/login")
    forget_cookie(request, response, SESSION_COOKIE)
    return response


@router.get("/lang/{lang}")
def switch_language(request: Request, lang: str, next: str = "") -> Response:
    response = see_other(safe_next(next))
    if lang in LANGS:
        set_cookie(request, response, LANG_COOKIE, lang, max_age=400 * 24 * 3600)
    return response
