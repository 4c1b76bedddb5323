"""Devices: every device of the team; revoke and wipe, each after its own confirmation
page that says what it does (the manager API's revoke/wipe operations)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from fastapi import Request, Response

from ...deps import SessionDep
from ...manager import devices as api
from ...manager.report_routes import scope_users
from ..i18n import negotiate, translator
from ..session import ConsoleUserDep, ConsoleWriterDep
from ..templating import render
from .common import page_router, see_other

router = page_router()
Action = Literal["revoke", "wipe"]


@router.get("/devices")
def device_list(
    request: Request, me: ConsoleUserDep, session: SessionDep, done: str = "", device: str = ""
) -> Response:
    listing = api.list_devices(
        me.auth, session, user_id=None, include_revoked=True, offset=0, limit=1000
    )
    names = scope_users(session, me.auth, reps_only=False)
    session.rollback()
    t = translator(negotiate(request))
    flash = ""
    if done in ("revoke", "wipe"):
        flash = t(f"dev.done_{done}", device=device[:64])
    return render(
        request,
        "devices.html",
        me=me,
        nav="devices",
        devices=listing.items,
        names=names,
        now=datetime.now(UTC),
        flash=flash,
    )


@router.get("/devices/{device_id}/{action}")
def confirm(
    request: Request, device_id: str, action: Action, me: ConsoleUserDep, session: SessionDep
) -> Response:
    listing = api.list_devices(
        me.auth, session, user_id=None, include_revoked=True, offset=0, limit=1000
    )
    session.rollback()
    device = next((d for d in listing.items if d.id == device_id), None)
    if device is None:
        from ...errors import NotFound

        raise NotFound(f"no device {device_id!r} in your scope")
    return render(
        request, "device_confirm.html", me=me, nav="devices", device=device, action=action
    )


@router.post("/devices/{device_id}/{action}")
def act(device_id: str, action: Action, me: ConsoleWriterDep, session: SessionDep) -> Response:
    done = (
        api.wipe(device_id, me.auth, session)
        if action == "wipe"
        else api.revoke(device_id, me.auth, session)
    )
    label = done.name or done.id
    return see_other(f"/console/devices?done={action}&device={label}")
