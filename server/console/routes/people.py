"""Users and teams: create, deactivate, reset password, enrol TOTP (QR drawn on the
server with segno), and teams for admins — all through the manager API's operations."""

from __future__ import annotations

from typing import Annotated, Any

import segno
from fastapi import Form, Request, Response
from pydantic import ValidationError

from sync_protocol import ProtocolError

from ...deps import SessionDep
from ...manager import people as api
from ...manager.common import require_admin
from ..i18n import negotiate, translator
from ..session import ConsoleUser, ConsoleUserDep, ConsoleWriterDep
from ..templating import render
from .common import page_router, see_other

router = page_router()
Text = Annotated[str, Form(max_length=1024)]


def _page(
    request: Request, me: ConsoleUser, session: SessionDep, *, status: int = 200, **extra: Any
) -> Response:
    users = api.list_users(me.auth, session, role=None, active=None, offset=0, limit=1000)
    teams = api.list_teams(me.auth, session)
    session.rollback()
    context: dict[str, Any] = {
        "errors": {},
        "form": {},
        "flash": "",
        "secret": None,
        "qr": None,
        "confirm": None,
    }
    context.update(extra)
    return render(
        request,
        "users.html",
        me=me,
        nav="users",
        status=status,
        users=users.items,
        teams=teams,
        team_names={t.id: t.name for t in teams},
        **context,
    )


@router.get("/users")
def users_page(
    request: Request, me: ConsoleUserDep, session: SessionDep, deactivate: str = ""
) -> Response:
    confirm = None
    if deactivate:
        confirm = api.user_out(api.managed_user(session, me.auth, deactivate[:64]))
    return _page(request, me, session, confirm=confirm)


def _errors(exc: ValidationError) -> dict[str, str]:
    return {str(e["loc"][0]) if e["loc"] else "_": str(e["msg"]) for e in exc.errors()}


@router.post("/users")
def create_user(
    request: Request,
    me: ConsoleWriterDep,
    session: SessionDep,
    username: Text,
    password: Text,
    display_name: Text = "",
    role: Text = "rep",
    team_id: Text = "",
) -> Response:
    form = {"username": username, "display_name": display_name, "role": role, "team_id": team_id}
    try:
        body = api.CreateUser(
            username=username,
            password=password,
            display_name=display_name or None,
            role=role,  # type: ignore[arg-type]
            team_id=team_id or None,
        )
        api.create_user_route(body, me.auth, session)
    except ValidationError as exc:
        return _page(request, me, session, status=422, errors=_errors(exc), form=form)
    except ProtocolError as exc:
        session.rollback()
        return _page(request, me, session, status=422, errors={"_": exc.message}, form=form)
    t = translator(negotiate(request))
    return _page(request, me, session, flash=f"{t('saved')} {username}")


@router.post("/users/{user_id}/deactivate")
def deactivate(user_id: str, me: ConsoleWriterDep, session: SessionDep) -> Response:
    api.deactivate_user(user_id, me.auth, session)
    return see_other("/console/users")


@router.post("/users/{user_id}/reset-password")
def reset_password(
    request: Request, user_id: str, me: ConsoleWriterDep, session: SessionDep
) -> Response:
    user = api.managed_user(session, me.auth, user_id)
    name = user.display_name
    result = api.reset_password(user_id, api.ResetPassword(new_password=None), me.auth, session)
    t = translator(negotiate(request))
    secret = t("users.reset_done", name=name, password=result.temporary_password or "")
    return _page(request, me, session, secret=secret)


@router.post("/users/{user_id}/totp")
def enrol_totp(
    request: Request, user_id: str, me: ConsoleWriterDep, session: SessionDep
) -> Response:
    user = api.managed_user(session, me.auth, user_id)
    name = user.display_name
    enrolment = api.enrol_totp(user_id, me.auth, session)
    qr = segno.make(enrolment.otpauth_uri, error="m").svg_data_uri(scale=5, border=2)
    t = translator(negotiate(request))
    return _page(
        request,
        me,
        session,
        qr={"uri": qr, "secret": enrolment.secret, "text": t("users.enrol_text", name=name)},
    )


@router.post("/teams")
def create_team(
    request: Request, me: ConsoleWriterDep, session: SessionDep, name: Text
) -> Response:
    # The API route's AdminAuth dependency does not run when it is called as a function:
    # the same check, here.
    auth = require_admin(me.auth)
    try:
        api.create_team_route(api.CreateTeam(name=name, manager_id=None), auth, session)
    except ValidationError as exc:
        return _page(request, me, session, status=422, errors=_errors(exc))
    return see_other("/console/users")
