"""The audit log with filters (the manager API's audit query, in the caller's scope)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Query, Request, Response

from ...deps import SessionDep
from ...manager import devices as api
from ...reports.base import scope_users
from ..session import ConsoleUserDep
from ..templating import render
from .common import page_router

router = page_router()
Short = Annotated[str, Query(max_length=64)]
PAGE = 50


def _moment(text: str, *, end: bool = False) -> datetime | None:
    """A filter's date (or date and time); a bare ``until`` date includes that whole day
    (the API's ``until`` is exclusive). Text that is no date filters nothing."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if end and len(text) == 10:
        moment += timedelta(days=1)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@router.get("/audit")
def audit_page(
    request: Request,
    me: ConsoleUserDep,
    session: SessionDep,
    user: Short = "",
    action: Short = "",
    entity: Short = "",
    record: Short = "",
    since: Short = "",
    until: Short = "",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    listing = api.audit_log(
        me.auth,
        session,
        user_id=user or None,
        device_id=None,
        entity=entity or None,
        record_id=record or None if entity else None,
        action=action or None,
        since=_moment(since),
        until=_moment(until, end=True),
        offset=(page - 1) * PAGE,
        limit=PAGE,
    )
    names = scope_users(session, me.auth, reps_only=False)
    session.rollback()
    params = {
        "user": user,
        "action": action,
        "entity": entity,
        "record": record,
        "since": since,
        "until": until,
    }
    pages = max(1, -(-listing.total // PAGE))
    return render(
        request,
        "audit.html",
        me=me,
        nav="audit",
        listing=listing,
        names=names,
        params=params,
        page=page,
        pages=pages,
    )
