"""The conflicts inbox: field by field, resolve by choosing a side or typing a value.

Resolving calls the manager API's :func:`~server.manager.conflicts.resolve_conflict`: the
choice is written through the sync engine and the conflict marked resolved in one
transaction, so every device gets the decision on its next pull.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Form, Query, Request, Response

from sync_protocol import CRM_SCHEMA, DELETED_FIELD, ProtocolError

from ...deps import ContextDep, SessionDep
from ...manager import conflicts as api
from ...manager.records import load_row
from ...models import Device
from ...reports.base import scope_users
from ..i18n import negotiate, translator
from ..services.forms import _convert, display
from ..session import ConsoleUserDep, ConsoleWriterDep
from ..templating import render
from .common import page_router, see_other

router = page_router()


def _typed(collection: str, field: str, text: str) -> Any:
    entity = CRM_SCHEMA.get(collection)
    spec = entity.fields.get(field) if entity else None
    if spec is None or field == DELETED_FIELD:
        try:
            return json.loads(text)
        except ValueError:
            return text
    if spec.type.value in ("json", "geo"):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return _convert(spec.type, text)


@router.get("/conflicts")
def inbox(
    request: Request,
    me: ConsoleUserDep,
    session: SessionDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    done: str = "",
) -> Response:
    listing = api.list_conflicts(me.auth, session, status="open", offset=(page - 1) * 50, limit=50)
    conn = session.connection()
    labels: dict[str, str] = {}
    for item in listing.items:
        row = load_row(conn, item.collection, item.record_id)
        if row is not None:
            f = row.fields
            labels[item.id] = str(f.get("name") or f.get("title") or f.get("number") or row.id)
    devices = {
        d.id: d.name or d.id
        for d in session.query(Device).filter(
            Device.id.in_({i.device_id for i in listing.items if i.device_id})
        )
    }
    names = scope_users(session, me.auth, reps_only=False)
    session.rollback()
    t = translator(negotiate(request))
    return render(
        request,
        "conflicts.html",
        me=me,
        nav="conflicts",
        listing=listing,
        labels=labels,
        devices=devices,
        names=names,
        show=display,
        page=page,
        flash=t("cf.resolved") if done else "",
    )


@router.post("/conflicts/{conflict_id}/resolve")
def resolve(
    conflict_id: str,
    me: ConsoleWriterDep,
    context: ContextDep,
    session: SessionDep,
    choice: Annotated[str, Form(pattern="^(local|remote|value)$")],
    value: Annotated[str, Form(max_length=20_000)] = "",
) -> Response:
    conflict = api.get_conflict(conflict_id, me.auth, session)
    session.rollback()
    body = api.ResolveConflict(
        choice=choice,  # type: ignore[arg-type]
        value=_typed(conflict.collection, conflict.field, value) if choice == "value" else None,
    )
    try:
        api.resolve_conflict(conflict_id, body, me.auth, context, session)
    except ProtocolError:
        session.rollback()
        raise
    return see_other("/console/conflicts?done=1")
