"""Customers: the list, CSV export, the customer page, editing, photo thumbnails."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request, Response

from sync_protocol import ProtocolError

from ...attachments.service import AttachmentService
from ...attachments.thumbnails import THUMBNAIL_MIME
from ...deps import ContextDep, SessionDep
from ...manager import transfer
from ...manager.records import StoredRow, visible_row, write_record
from ..i18n import negotiate, translator
from ..services import customers as service
from ..services.forms import changed, display, field_errors, form_fields, posted_values
from ..session import ConsoleUser, ConsoleUserDep, ConsoleWriterDep
from ..templating import render
from .common import BOM, page_router, see_other

router = page_router()
Short = Annotated[str, Query(max_length=200)]


def _query(
    q: str, owner: str, status: str, tier: str, source: str, tag: str, page: int
) -> service.CustomerQuery:
    return service.CustomerQuery(q.strip(), owner, status, tier, source, tag, max(page, 1))


@router.get("/customers")
def customer_list(
    request: Request,
    me: ConsoleUserDep,
    session: SessionDep,
    q: Short = "",
    owner: Short = "",
    status: Short = "",
    tier: Short = "",
    source: Short = "",
    tag: Short = "",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    view = service.list_customers(session, me, _query(q, owner, status, tier, source, tag, page))
    return render(request, "customers.html", me=me, view=view, nav="customers")


@router.get("/customers/export.csv")
def customer_export(
    me: ConsoleUserDep,
    session: SessionDep,
    q: Short = "",
    owner: Short = "",
    status: Short = "",
    tier: Short = "",
    source: Short = "",
    tag: Short = "",
) -> Response:
    """The API's own export (same columns and escaping) with a UTF-8 BOM for Excel."""
    query = _query(q, owner, status, tier, source, tag, 1)
    terms = [f"{k}:{v}" for k, v in service.filter_terms(query)]
    answer = transfer.export_csv(
        "customers",
        me.auth,
        session,
        filter=terms,
        q=query.q or None,
        owner_id=query.owner or None,
        sort="name",
    )
    return Response(
        BOM + bytes(answer.body),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="customers.csv"'},
    )


def _attachments(request: Request) -> AttachmentService | None:
    return getattr(request.app.state, "attachments", None)


@router.get("/customers/{customer_id}")
def customer_page(
    request: Request, customer_id: str, me: ConsoleUserDep, session: SessionDep
) -> Response:
    view = service.customer_page(session, me, _attachments(request), customer_id)
    return render(request, "customer.html", me=me, view=view, nav="customers")


def _edit_page(
    request: Request,
    me: ConsoleUser,
    row: StoredRow,
    values: dict[str, str],
    errors: dict[str, str],
    *,
    status: int = 200,
    notice: str = "",
) -> Response:
    return render(
        request,
        "customer_edit.html",
        me=me,
        status=status,
        row=row,
        fields=form_fields("customers"),
        values=values,
        errors=errors,
        notice=notice,
        nav="customers",
    )


@router.get("/customers/{customer_id}/edit")
def customer_edit_form(
    request: Request, customer_id: str, me: ConsoleUserDep, session: SessionDep
) -> Response:
    row = visible_row(session.connection(), me.principal, "customers", customer_id)
    session.rollback()
    values = {f.name: display(row.fields.get(f.name)) for f in form_fields("customers")}
    return _edit_page(request, me, row, values, {})


@router.post("/customers/{customer_id}/edit")
async def customer_edit(
    request: Request,
    customer_id: str,
    me: ConsoleWriterDep,
    context: ContextDep,
    session: SessionDep,
) -> Response:
    form = await request.form()
    row = visible_row(session.connection(), me.principal, "customers", customer_id)
    session.rollback()
    texts = {f.name: str(form.get(f.name, "")) for f in form_fields("customers")}
    values = posted_values("customers", texts)
    patch = changed(row.fields, values)
    base = str(form.get("base_version", ""))
    if not patch:
        return see_other(f"/console/customers/{customer_id}")
    try:
        write_record(
            session,
            context,
            me.principal,
            "customers",
            customer_id,
            op="upsert",
            fields=patch,
            base_version=int(base) if base.isdigit() else row.version,
        )
    except ProtocolError as exc:
        session.rollback()
        if exc.code.value == "precondition_failed":
            fresh = visible_row(session.connection(), me.principal, "customers", customer_id)
            session.rollback()
            current = {f.name: display(fresh.fields.get(f.name)) for f in form_fields("customers")}
            t_notice = "cust.changed"
            return _edit_page(request, me, fresh, current, {}, status=409, notice=t_notice)
        errors = field_errors(exc, translator(negotiate(request))) or {"_": exc.message}
        return _edit_page(request, me, row, texts, errors, status=422)
    return see_other(f"/console/customers/{customer_id}?saved=1")


@router.get("/attachments/{attachment_id}/thumbnail")
def thumbnail(
    request: Request, attachment_id: str, me: ConsoleUserDep, session: SessionDep
) -> Response:
    attachments = _attachments(request)
    if attachments is None:
        return Response(status_code=404)
    data = attachments.thumbnail(session, me.principal, attachment_id[:64], 192)
    return Response(
        data, media_type=THUMBNAIL_MIME, headers={"Cache-Control": "private, max-age=86400"}
    )
