"""Due reminders: ``GET /v1/manager/reminders`` (a team's) and ``GET /v1/reminders``
(the caller's own, for any signed-in user — a rep's web view, an integration).

Phones compute the same reminders from their own records with
:func:`sync_protocol.reminders.due_reminders`; see :mod:`server.crm.reminders`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from ..crm.reminders import DueReminder, due_for
from ..deps import CurrentAuth, SessionDep
from .common import IsoDateTime, ManagerAuth, error_responses

router = APIRouter(tags=["manager: reminders"])


class ReminderOut(BaseModel):
    kind: str = Field(description="`task`, `contract` or `follow_up`.")
    collection: str
    record_id: str
    customer_id: str | None
    owner_id: str | None = Field(description="The record's owner.")
    user_id: str | None = Field(description="Whom it is for: a task's assignee, else the owner.")
    title: str
    due_at: datetime
    until: datetime | None = Field(description="When it stops being due (contracts: end date).")


class ReminderList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "as_of": "2026-12-02T09:00:00Z",
                    "items": [
                        {
                            "kind": "contract",
                            "collection": "contracts",
                            "record_id": "k-1",
                            "customer_id": "c-1",
                            "owner_id": "u-rep1",
                            "user_id": "u-rep1",
                            "title": "HT-001 年度服务合同",
                            "due_at": "2026-10-17T16:00:00Z",
                            "until": "2026-12-16T16:00:00Z",
                        }
                    ],
                }
            ]
        }
    )

    as_of: datetime
    items: list[ReminderOut]


AsOf = Annotated[IsoDateTime | None, Query(description="Default: now.")]
AheadHours = Annotated[
    int, Query(ge=0, le=24 * 366, description="Also list reminders due this many hours ahead.")
]


def _out(as_of: datetime, items: list[DueReminder]) -> ReminderList:
    return ReminderList(as_of=as_of, items=[ReminderOut.model_validate(r.as_json()) for r in items])


def _moment(as_of: datetime | None) -> datetime:
    moment = as_of or datetime.now(UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@router.get("/v1/manager/reminders", response_model=ReminderList, responses=error_responses())
def team_reminders(
    auth: ManagerAuth,
    session: SessionDep,
    user_id: Annotated[str | None, Query(max_length=64, description="Only this user's.")] = None,
    as_of: AsOf = None,
    ahead_hours: AheadHours = 0,
) -> ReminderList:
    """Reminders due in your team (everyone's for an admin), soonest first."""
    moment = _moment(as_of)
    items = due_for(
        session.connection(),
        auth.principal,
        now_ms=int(moment.timestamp() * 1000),
        ahead_ms=ahead_hours * 3_600_000,
        user_ids=[user_id] if user_id else None,
    )
    session.rollback()
    return _out(moment, items)


@router.get("/v1/reminders", response_model=ReminderList, responses=error_responses())
def my_reminders(
    auth: CurrentAuth, session: SessionDep, as_of: AsOf = None, ahead_hours: AheadHours = 0
) -> ReminderList:
    """Your own due reminders (any role)."""
    moment = _moment(as_of)
    items = due_for(
        session.connection(),
        auth.principal,
        now_ms=int(moment.timestamp() * 1000),
        ahead_ms=ahead_hours * 3_600_000,
        user_ids=[auth.principal.user_id],
    )
    session.rollback()
    return _out(moment, items)
