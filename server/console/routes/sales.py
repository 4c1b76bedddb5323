"""Leads (list, create for a rep, a lead's page, convert) and the pipeline board (move a
deal)."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

from fastapi import Form, Query, Request, Response

from sync_protocol import CRM_SCHEMA, ErrorCode, ProtocolError, ValidationFailed
from sync_protocol.messages import ID_PATTERN

from ...deps import ContextDep, SessionDep
from ...errors import NotFound
from ...reports.base import scope_users
from ..i18n import negotiate, translator
from ..services import leads, pipeline
from ..services.forms import field_errors, form_fields, posted_values
from ..session import ConsoleUser, ConsoleUserDep, ConsoleWriterDep
from ..templating import render
from .common import page_router, safe_next, see_other

router = page_router()
Short = Annotated[str, Query(max_length=200)]


def _leads_page(
    request: Request,
    me: ConsoleUser,
    session: SessionDep,
    query: leads.LeadQuery,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    code: int = 200,
) -> Response:
    entity = CRM_SCHEMA["leads"]
    page = leads.page_of_leads(session, me, query)
    names = scope_users(session, me.auth, reps_only=False)
    reps = scope_users(session, me.auth, reps_only=True)
    session.rollback()
    return render(
        request,
        "leads.html",
        me=me,
        nav="leads",
        status=code,
        slice=page,
        names=names,
        reps=reps,
        params=query.params(),
        statuses=entity.fields["status"].choices,
        fields=form_fields("leads"),
        values=values or {"status": "new"},
        errors=errors or {},
    )


@router.get("/leads")
def list_leads(
    request: Request,
    me: ConsoleUserDep,
    session: SessionDep,
    q: Short = "",
    status: Short = "",
    owner: Short = "",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    query = leads.LeadQuery(q=q, status=status, owner=owner, page=page)
    return _leads_page(request, me, session, query)


@router.post("/leads")
async def create_lead(
    request: Request, me: ConsoleWriterDep, context: ContextDep, session: SessionDep
) -> Response:
    form = await request.form()
    texts = {f.name: str(form.get(f.name, "")) for f in form_fields("leads")}
    owner = str(form.get("owner_id", ""))[:64]
    values = {k: v for k, v in posted_values("leads", texts).items() if v is not None}
    try:
        row = leads.create_lead(session, context, me, values, owner or None)
    except ProtocolError as exc:
        session.rollback()
        if exc.code is ErrorCode.FORBIDDEN:
            raise  # an owner outside the caller's team: refused, not a field to fix
        errors = field_errors(exc, translator(negotiate(request))) or {"_": exc.message}
        texts["owner_id"] = owner
        return _leads_page(
            request, me, session, leads.LeadQuery(), values=texts, errors=errors, code=422
        )
    return see_other(f"/console/leads/{row.id}?created=1")


def _lead_page(
    request: Request,
    me: ConsoleUser,
    session: SessionDep,
    lead_id: str,
    *,
    duplicates: list[dict[str, Any]] | None = None,
    asked: leads.Conversion | None = None,
    error: str = "",
    code: int = 200,
) -> Response:
    view = leads.lead_page(session, me, lead_id)
    return render(
        request,
        "lead.html",
        me=me,
        nav="leads",
        status=code,
        view=view,
        shown=leads.lead_fields(),
        duplicates=duplicates,
        asked=asked or leads.Conversion(),
        error=error,
    )


@router.get("/leads/{lead_id}")
def lead_page(request: Request, lead_id: str, me: ConsoleUserDep, session: SessionDep) -> Response:
    return _lead_page(request, me, session, lead_id)


def _lead_ids(values: list[Any]) -> list[str]:
    ids = [str(v) for v in values][:1000]
    for lead_id in ids:
        if not re.fullmatch(ID_PATTERN, lead_id):
            raise NotFound("no such lead", details={"id": lead_id[:64]})
    return list(dict.fromkeys(ids))


@router.post("/leads/assign")
async def assign_leads(
    request: Request, me: ConsoleWriterDep, context: ContextDep, session: SessionDep
) -> Response:
    """The list's bulk action: the ticked leads to one rep, or round-robin."""
    form = await request.form()
    ids = _lead_ids(form.getlist("lead_id"))
    to = str(form.get("to", ""))[:64]
    back = str(form.get("back", ""))
    path, _, query = safe_next(back, "/console/leads").partition("?")
    kept = [(k, v) for k, v in parse_qsl(query) if k != "assigned"]
    if not ids or not to:
        return see_other(f"{path}?{urlencode(kept)}")
    out = leads.assign(session, context, me, ids, to)
    return see_other(f"{path}?{urlencode([*kept, ('assigned', len(out.assignments))])}")


@router.post("/leads/{lead_id}/assign")
def assign_lead(
    lead_id: str,
    me: ConsoleWriterDep,
    context: ContextDep,
    session: SessionDep,
    to: Annotated[str, Form(max_length=64)],
) -> Response:
    leads.assign(session, context, me, _lead_ids([lead_id]), to)
    return see_other(f"/console/leads/{lead_id}?assigned=1")


def _conversion(form: Any) -> leads.Conversion:
    amount = str(form.get("amount", "")).strip().replace(",", "")
    try:
        value = float(amount) if amount else None
    except ValueError:
        value = float("nan")
    existing = str(form.get("existing_customer_id", "")).strip()
    if existing and not re.fullmatch(ID_PATTERN, existing):
        raise NotFound("no such customer", details={"id": existing[:64]})
    return leads.Conversion(
        contact=form.get("contact") == "on",
        deal=form.get("deal") == "on",
        deal_name=str(form.get("deal_name", ""))[:200],
        stage_id=str(form.get("stage_id", ""))[:64],
        amount=value,
        existing_customer_id=existing or None,
        override_duplicate=form.get("override") == "possible_duplicate",
    )


@router.post("/leads/{lead_id}/convert")
async def convert_lead(
    request: Request,
    lead_id: str,
    me: ConsoleWriterDep,
    context: ContextDep,
    session: SessionDep,
) -> Response:
    asked = _conversion(await request.form())
    t = translator(negotiate(request))
    if asked.amount is not None and not math.isfinite(asked.amount):
        return _lead_page(
            request, me, session, lead_id, asked=asked, error=t("leads.bad_amount"), code=422
        )
    if asked.deal and not asked.stage_id:
        return _lead_page(
            request, me, session, lead_id, asked=asked, error=t("leads.need_stage"), code=422
        )
    try:
        outcome = leads.convert(session, context, me, lead_id, asked)
    except ValidationFailed as exc:
        session.rollback()
        message = "; ".join(field_errors(exc, t).values()) or exc.message
        return _lead_page(request, me, session, lead_id, asked=asked, error=message, code=422)
    if isinstance(outcome, leads.DuplicateFound):
        return _lead_page(
            request, me, session, lead_id, duplicates=outcome.matches, asked=asked, code=409
        )
    return see_other(f"/console/customers/{outcome.customer_id}?converted={lead_id}")


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
