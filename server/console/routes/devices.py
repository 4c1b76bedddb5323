"""Devices: every device of the team with its fleet health; revoke and wipe, each after
its own confirmation page that says what it does (the manager API's operations)."""

from __future__ import annotations

from typing import Literal
from urllib.parse import quote

from fastapi import Request, Response

from ...deps import ContextDep, SessionDep
from ...errors import NotFound
from ...fleet import routes as fleet_routes
from ...manager import devices as api
from ...reports.base import scope_users
from ..i18n import negotiate, translator
from ..session import ConsoleUser, ConsoleUserDep, ConsoleWriterDep
from ..templating import render
from .common import page_router, see_other

router = page_router()
Action = Literal["revoke", "wipe"]


def _devices(session: SessionDep, context: ContextDep, me: ConsoleUser) -> list[api.DeviceOut]:
    listing = api.list_devices(
        me.auth, session, context, user_id=None, include_revoked=True, offset=0, limit=1000
    )
    return listing.items


@router.get("/devices")
def device_list(
    request: Request,
    me: ConsoleUserDep,
    session: SessionDep,
    context: ContextDep,
    done: str = "",
    device: str = "",
) -> Response:
    devices = _devices(session, context, me)
    names = scope_users(session, me.auth, reps_only=False)
    session.rollback()
    t = translator(negotiate(request))
    flash = t(f"dev.done_{done}", device=device[:64]) if done in ("revoke", "wipe") else ""
    return render(
        request, "devices.html", me=me, nav="devices", devices=devices, names=names, flash=flash
    )


@router.get("/devices/{device_id}")
def device_page(
    request: Request, device_id: str, me: ConsoleUserDep, session: SessionDep, context: ContextDep
) -> Response:
    """One device: its health and ``fieldsync doctor``'s diagnosis (what to do)."""
    report = fleet_routes.diagnosis(device_id[:64], me.auth, session, context)
    names = scope_users(session, me.auth, reps_only=False)
    session.rollback()
    return render(request, "device.html", me=me, nav="devices", report=report, names=names)


@router.get("/devices/{device_id}/{action}")
def confirm(
    request: Request,
    device_id: str,
    action: Action,
    me: ConsoleUserDep,
    session: SessionDep,
    context: ContextDep,
) -> Response:
    device = next((d for d in _devices(session, context, me) if d.id == device_id), None)
    session.rollback()
    if device is None:
        raise NotFound(f"no device {device_id!r} in your scope")
    return render(
        request, "device_confirm.html", me=me, nav="devices", device=device, action=action
    )


@router.post("/devices/{device_id}/{action}")
def act(device_id: str, action: Action, me: ConsoleWriterDep, session: SessionDep) -> Response:
    run = api.wipe if action == "wipe" else api.revoke
    done = run(device_id, me.auth, session)
    return see_other(f"/console/devices?done={action}&device={quote(done.name or done.id)}")
