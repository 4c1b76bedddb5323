"""Devices (``/v1/manager/devices``) and the audit log (``/v1/manager/audit``).

A device row is refreshed by every sign-in, push and (at most once a minute) pull: last
seen, app and protocol version. Each device also carries its **fleet health**
(:mod:`server.fleet`): last push and pull, lag behind the server, pending writes and
dead letters as the device last reported them, its last error and clock offset.
Revoking a device ends its sessions at once (its next request answers
``device_revoked``); *wiping* also tells it to erase its local store.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select

from sync_protocol.messages import ID_PATTERN

from ..accounts import audit, now_ms, revoke_device
from ..deps import AuthContext, ContextDep, SessionDep
from ..errors import Forbidden, NotFound
from ..fleet.health import DeviceHealthOut, fleet_health
from ..models import AuditEntry, Device, User
from .common import IsoDateTime, ManagerAuth, Page, aware, error_responses
from .records import scope_owners

router = APIRouter(prefix="/v1/manager", tags=["manager: devices and audit"])


class DeviceOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "dev-7f3a",
                    "user_id": "u-rep1",
                    "name": "Pixel 7",
                    "platform": "android",
                    "app_version": "1.2.0",
                    "protocol": 1,
                    "last_seen": "2026-11-23T09:12:00Z",
                    "pending_writes": 3,
                    "revoked_at": None,
                    "wipe": False,
                    "created_at": "2026-10-01T08:00:00Z",
                    "health": DeviceHealthOut.model_config["json_schema_extra"]["examples"][0],  # type: ignore[index]
                }
            ]
        }
    )

    id: str
    user_id: str
    name: str | None
    platform: str | None
    app_version: str | None
    protocol: int | None
    last_seen: datetime | None
    pending_writes: int | None = Field(
        description="Writes queued on the device as it last reported (same as "
        "`health.pending_writes`)."
    )
    revoked_at: datetime | None
    wipe: bool
    created_at: datetime
    health: DeviceHealthOut | None = Field(
        default=None, description="Fleet health (absent on revoke/wipe answers)."
    )


class DevicePage(Page):
    items: list[DeviceOut]


def _device_out(d: Device, health: DeviceHealthOut | None = None) -> DeviceOut:
    return DeviceOut(
        id=d.id,
        user_id=d.user_id,
        name=d.name,
        platform=d.platform,
        app_version=d.app_version,
        protocol=d.protocol,
        last_seen=aware(d.last_seen),
        pending_writes=health.pending_writes if health is not None else None,
        revoked_at=aware(d.revoked_at),
        wipe=bool(d.wipe),
        created_at=aware(d.created_at),
        health=health,
    )


@router.get("/devices", response_model=DevicePage, responses=error_responses())
def list_devices(
    auth: ManagerAuth,
    session: SessionDep,
    context: ContextDep,
    user_id: Annotated[str | None, Query(max_length=64)] = None,
    include_revoked: bool = True,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DevicePage:
    """Your team's devices, most recently seen first, with their fleet health."""
    context.ops.activity.flush_quietly()  # this process's buffered activity, before reading
    stmt = select(Device)
    owners = scope_owners(auth.principal)
    if owners is not None:
        stmt = stmt.where(Device.user_id.in_(owners))
    if user_id is not None:
        stmt = stmt.where(Device.user_id == user_id)
    if not include_revoked:
        stmt = stmt.where(Device.revoked_at.is_(None))
    devices = list(session.scalars(stmt))
    devices.sort(key=lambda d: (d.last_seen is None, -(d.last_seen or d.created_at).timestamp()))
    page = devices[offset : offset + limit]
    health = fleet_health(session, page, now_ms=now_ms())
    return DevicePage(
        total=len(devices),
        offset=offset,
        limit=limit,
        items=[_device_out(d, health[d.id]) for d in page],
    )


def device_in_scope(session: SessionDep, auth: AuthContext, device_id: str) -> Device:
    """The device, if the caller manages its user (else 404, as if it did not exist)."""
    device = session.get(Device, device_id)
    if device is None or not auth.principal.sees_owner(device.user_id):
        raise NotFound(f"no device {device_id!r} in your scope", details={"device_id": device_id})
    return device


def _managed_device(session: SessionDep, auth: AuthContext, device_id: str) -> Device:
    device = device_in_scope(session, auth, device_id)
    owner = session.get(User, device.user_id)
    if owner is not None and owner.role == "admin" and auth.principal.role != "admin":
        raise Forbidden("managers cannot revoke an admin's device")
    if device.id == auth.device.id:
        raise Forbidden("you cannot revoke the device you are signed in with")
    return device


DeviceId = Annotated[str, Path(pattern=ID_PATTERN)]


def _revoke(session: SessionDep, auth: AuthContext, device_id: str, *, wipe: bool) -> DeviceOut:
    device = _managed_device(session, auth, device_id)
    revoke_device(session, device.id, wipe=wipe)
    audit(
        session,
        "device.wipe" if wipe else "device.revoke",
        user_id=auth.user.id,
        device_id=auth.device.id,
        target=f"devices/{device.id}",
        details={"owner": device.user_id},
    )
    session.commit()
    return _device_out(device)


@router.get("/devices/{device_id}", response_model=DeviceOut, responses=error_responses(404))
def get_device(
    device_id: DeviceId, auth: ManagerAuth, session: SessionDep, context: ContextDep
) -> DeviceOut:
    """One device with its fleet health."""
    context.ops.activity.flush_quietly()  # this process's buffered activity, before reading
    device = device_in_scope(session, auth, device_id)
    health = fleet_health(session, [device], now_ms=now_ms())
    return _device_out(device, health[device.id])


@router.post(
    "/devices/{device_id}/revoke", response_model=DeviceOut, responses=error_responses(404)
)
def revoke(device_id: DeviceId, auth: ManagerAuth, session: SessionDep) -> DeviceOut:
    """Cut a device off (lost or replaced): its next request answers ``device_revoked``."""
    return _revoke(session, auth, device_id, wipe=False)


@router.post("/devices/{device_id}/wipe", response_model=DeviceOut, responses=error_responses(404))
def wipe(device_id: DeviceId, auth: ManagerAuth, session: SessionDep) -> DeviceOut:
    """Revoke a device and order it to erase its local data (``details.wipe = true``)."""
    return _revoke(session, auth, device_id, wipe=True)


# ---- audit ---------------------------------------------------------------------------


class AuditOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 981,
                    "at_ms": 1732363212345,
                    "user_id": "u-manager",
                    "device_id": "dev-web-1",
                    "action": "mutation.applied",
                    "target": "customers/c-1",
                    "details": {"mutation_id": "srv-9f…", "op": "upsert", "version": 42},
                    "address": None,
                }
            ]
        }
    )

    id: int
    at_ms: int
    user_id: str | None
    device_id: str | None
    action: str
    target: str | None
    details: Any = None
    address: str | None


class AuditPage(Page):
    items: list[AuditOut]


def _details(raw: str | None) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw


@router.get("/audit", response_model=AuditPage, responses=error_responses())
def audit_log(
    auth: ManagerAuth,
    session: SessionDep,
    user_id: Annotated[str | None, Query(max_length=64)] = None,
    device_id: Annotated[str | None, Query(max_length=64)] = None,
    entity: Annotated[
        str | None, Query(max_length=64, description="Collection, e.g. `customers`.")
    ] = None,
    record_id: Annotated[str | None, Query(max_length=64, description="With `entity`.")] = None,
    action: Annotated[
        str | None, Query(max_length=64, description="Exact, or a prefix ending in `*`.")
    ] = None,
    since: Annotated[IsoDateTime | None, Query(description="From this time (inclusive).")] = None,
    until: Annotated[IsoDateTime | None, Query(description="Before this time.")] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditPage:
    """Audit entries, newest first. A manager sees the entries of their team's members."""
    stmt = select(AuditEntry)
    owners = scope_owners(auth.principal)
    if owners is not None:
        stmt = stmt.where(AuditEntry.user_id.in_(owners))
    if user_id is not None:
        stmt = stmt.where(AuditEntry.user_id == user_id)
    if device_id is not None:
        stmt = stmt.where(AuditEntry.device_id == device_id)
    if entity is not None:
        if record_id is not None:
            stmt = stmt.where(AuditEntry.target == f"{entity}/{record_id}")
        else:
            prefix = entity.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            stmt = stmt.where(AuditEntry.target.like(f"{prefix}/%", escape="\\"))
    if action is not None:
        if action.endswith("*"):
            prefix = action[:-1].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            stmt = stmt.where(AuditEntry.action.like(f"{prefix}%", escape="\\"))
        else:
            stmt = stmt.where(AuditEntry.action == action)
    if since is not None:
        stmt = stmt.where(AuditEntry.at_ms >= int(aware(since).timestamp() * 1000))
    if until is not None:
        stmt = stmt.where(AuditEntry.at_ms < int(aware(until).timestamp() * 1000))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    entries = session.scalars(stmt.order_by(AuditEntry.id.desc()).offset(offset).limit(limit)).all()
    return AuditPage(
        total=total,
        offset=offset,
        limit=limit,
        items=[
            AuditOut(
                id=e.id,
                at_ms=e.at_ms,
                user_id=e.user_id,
                device_id=e.device_id,
                action=e.action,
                target=e.target,
                details=_details(e.details),
                address=e.address,
            )
            for e in entries
        ],
    )
