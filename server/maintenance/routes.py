"""``/v1/admin/backups``: backup and restore from the admin API (admins only); see
:mod:`server.maintenance.backups` and docs/manager-api.md "Backup and restore"."""

from __future__ import annotations

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from sync_protocol import ErrorCode, ProtocolError

from ..accounts import audit
from ..deps import ContextDep, SessionDep
from ..errors import Forbidden
from ..manager.backup import BackupError
from ..manager.common import AdminAuth, error_responses
from .backups import BackupOut, RestoreOut, create_backup, list_backups, restore_backup

router = APIRouter(prefix="/v1/admin", tags=["admin: backups"])


class BackupFailed(ProtocolError):
    """409: the backup or restore could not be done (another restore runs, a tool is
    missing, …); the message says why."""

    code = ErrorCode.CONFLICT


class BackupList(BaseModel):
    items: list[BackupOut]


class RestoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    confirm: str = Field(
        max_length=128, description="The backup's name again: restoring replaces every row."
    )


BackupName = Path(pattern=r"^[A-Za-z0-9._\-]{1,128}$")


@router.get("/backups", response_model=BackupList, responses=error_responses())
def backups(auth: AdminAuth, context: ContextDep) -> BackupList:
    """The backups in the server's backup directory, newest first."""
    return BackupList(items=list_backups(context.settings))


@router.post("/backups", response_model=BackupOut, status_code=201, responses=error_responses(409))
def take_backup(auth: AdminAuth, context: ContextDep, session: SessionDep) -> BackupOut:
    """Write a consistent backup of the live database (safe while serving)."""
    try:
        made = create_backup(context.settings)
    except BackupError as exc:
        raise BackupFailed(str(exc)) from None
    audit(session, "admin.backup", user_id=auth.user.id, device_id=auth.device.id, target=made.name)
    session.commit()
    return made


@router.post(
    "/backups/{name}/restore", response_model=RestoreOut, responses=error_responses(404, 409)
)
def restore(
    body: RestoreRequest,
    auth: AdminAuth,
    context: ContextDep,
    session: SessionDep,
    name: str = BackupName,
) -> RestoreOut:
    """Replace the live database with a backup. Starts a new sync epoch: every device
    resyncs from scratch, keeping its unsent writes. This process answers 503 to other
    requests meanwhile; stop other server processes first."""
    if body.confirm != name:
        raise Forbidden("confirm must repeat the backup's name")
    session.close()  # hold no connection across the restore
    try:
        done = restore_backup(context.settings, name, context.ops.restore_gate, context.engine)
    except BackupError as exc:
        raise BackupFailed(str(exc)) from None
    with context.sessions() as after:
        audit(
            after, "admin.restore", user_id=auth.user.id, target=name, details={"epoch": done.epoch}
        )
        after.commit()
    return done
