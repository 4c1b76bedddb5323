"""Leads (list, create) and the pipeline board (move a deal)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Query, Request, Response

from sync_protocol import CRM_SCHEMA, ProtocolError

from ...deps import ContextDep, SessionDep
from ...manager.records import load_rows, new_record_id, select_rows, write_record
from ...reports.base import scope_users
from ..i18n import negotiate, translator
from ..services import pipeline
from ..services.forms import field_errors, form_fields, posted_values
from ..services.records import paginate
from ..session import ConsoleUser, ConsoleUserDep, ConsoleWriterDep
from ..templating import render
from .common import page_router, see_other

router = page_router()
Short = Annotated[str, Query(max_length=200)]


def _leads_page(
    request: Request,
    me: ConsoleUser,
    session: SessionDep,
    *,
    q: str = "",
    status: str = "",
    page: int = 1,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    code: int = 200,
) -> Response:
    entity = CRM_SCHEMA["leads"]
    rows = select_rows(
        load_rows(session.connection(), me.principal, "leads"),
        filters=[("status", status)] if status else [],
        search=q or None,
        search_fields=entity.search_fields,
        sort="-version",
    )
    names = scope_users(session, me.auth, reps_only=False)
    session.rollback()
    return render(
        request,
        "leads.html",
        me=me,
        nav="leads",
        status=code,
        slice=paginate(rows, page),
        names=names,
        params={"q": q, "status": status},
        statuses=entity.fields["status"].choices,
        fields=form_fields("leads"),
        values=values or {"status": "new"},
        errors=errors or {},
    )


@router.get("/leads")
def leads(
    request: Request,
    me: ConsoleUserDep,
    session: SessionDep,
    q: Short = "",
    status: Short = "",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    return _leads_page(request, me, session, q=q, status=status, page=page)


@router.post("/leads")
async def create_lead(
    request: Request, me: ConsoleWriterDep, context: ContextDep, session: SessionDep
) -> Response:
    form = await request.form()
    texts = {f.name: str(form.get(f.name, "")) for f in form_fields("leads")}
    values = {k: v for k, v in posted_values("leads", texts).items() if v is not None}
    try:
        write_record(
            session,
            context,
            me.principal,
            "leads",
            new_record_id(),
            op="upsert",
            fields=values,
            creating=True,
        )
    except ProtocolError as exc:
        session.rollback()
        errors = field_errors(exc, translator(negotiate(request))) or {"_": exc.message}
        return _leads_page(request, me, session, values=texts, errors=errors, code=422)
    return see_other("/console/leads")


@router.get("/pipeline")
def board(request: Request, me: ConsoleUserDep, session: SessionDep) -> Response:
    columns, customers = pipeline.board(session, me)
    return render(
        request, "pipeline.html", me=me, nav="pipeline", columns=columns, customers=customers
    )


@router.post("/pipeline/{deal_id}/move")
def move(
    deal_id: str,
    me: ConsoleWriterDep,
    context: ContextDep,
    session: SessionDep,
    stage_id: Annotated[str, Form(max_length=64)],
) -> Response:
    pipeline.move(session, context, me, deal_id, stage_id)
    return see_other(f"/console/pipeline#deal-{deal_id}")
