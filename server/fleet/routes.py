"""``GET /v1/manager/devices/{device_id}/diagnosis``: ``fieldsync doctor`` over HTTP.

The device list and one device's health are in :mod:`server.manager.devices`; this is
the diagnosis (:func:`server.fleet.doctor.diagnose`), for managers (their team's
devices) and admins.
"""

from __future__ import annotations

from fastapi import APIRouter

from ..accounts import now_ms
from ..deps import ContextDep, SessionDep
from ..manager.common import ManagerAuth, error_responses
from ..manager.devices import DeviceId, device_in_scope
from .doctor import Diagnosis, diagnose

router = APIRouter(prefix="/v1/manager", tags=["manager: devices and audit"])


@router.get(
    "/devices/{device_id}/diagnosis", response_model=Diagnosis, responses=error_responses(404)
)
def diagnosis(
    device_id: DeviceId, auth: ManagerAuth, session: SessionDep, context: ContextDep
) -> Diagnosis:
    """Why this device is (or is not) syncing, in plain language, with what to do."""
    context.ops.activity.flush_quietly()
    device = device_in_scope(session, auth, device_id)
    return diagnose(
        session, device, settings=context.settings, schema=context.schema, now_ms=now_ms()
    )
