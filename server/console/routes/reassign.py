"""Reassignment: one customer, or a rep's whole book, previewed before it moves."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, Query, Request, Response

from ...deps import ContextDep, SessionDep
from ...manager import reassignment as api
from ...models import User
from ...reports.base import scope_users
from ..i18n import negotiate, translator
from ..services import reassign as service
from ..services.customers import CustomerQuery, search
from ..session import ConsoleUserDep, ConsoleWriterDep
from ..templating import render
from .common import page_router

router = page_router()
Id = Annotated[str, Form(max_length=64)]


def _reps(session: SessionDep, me: ConsoleUserDep) -> dict[str, str]:
    names = scope_users(session, me.auth, reps_only=False)
    active = {
        u.id for u in session.query(User).filter(User.id.in_(list(names)), User.active.is_(True))
    }
    return {uid: name for uid, name in names.items() if uid in active}


def _page(
    request: Request,
    me: ConsoleUserDep,
    session: SessionDep,
    reps: dict[str, str],
    *,
    status: int = 200,
    **values: Any,
) -> Response:
    """The reassign page; ``values`` override the empty defaults."""
    page: dict[str, Any] = {
        "chosen": None,
        "matches": [],
        "find": "",
        "preview": None,
        "error": "",
        "flash": "",
    }
    page.update(values)
    return render(
        request,
        "reassign.html",
        me=me,
        nav="reassign",
        reps=reps,
        everyone=scope_users(session, me.auth, reps_only=False),
        status=status,
        **page,
    )


@router.get("/reassign")
def reassign_form(
    request: Request,
    me: ConsoleUserDep,
    session: SessionDep,
    customer: Annotated[str, Query(max_length=64)] = "",
    find: Annotated[str, Query(max_length=100)] = "",
) -> Response:
    matches = search(session, me, CustomerQuery(q=find)) if find else []
    chosen = None
    if customer:
        from ...manager.records import visible_row

        chosen = visible_row(session.connection(), me.principal, "customers", customer)
    reps = _reps(session, me)
    session.rollback()
    return _page(request, me, session, reps, chosen=chosen, matches=matches, find=find)


@router.post("/reassign/preview")
def preview(
    request: Request,
    me: ConsoleWriterDep,
    session: SessionDep,
    mode: Annotated[str, Form(pattern="^(one|book)$")],
    to_owner: Id,
    customer_id: Id = "",
    from_owner: Id = "",
) -> Response:
    t = translator(negotiate(request))
    reps = _reps(session, me)
    if mode == "book" and from_owner == to_owner:
        return _page(request, me, session, reps, error=t("re.same"), status=422)
    view = (
        service.preview_one(session, me, customer_id, to_owner)
        if mode == "one"
        else service.preview_book(session, me, from_owner, to_owner)
    )
    return _page(request, me, session, reps, preview=view)


@router.post("/reassign/apply")
def apply(
    request: Request,
    me: ConsoleWriterDep,
    context: ContextDep,
    session: SessionDep,
    mode: Annotated[str, Form(pattern="^(one|book)$")],
    to_owner: Id,
    customer_id: Id = "",
    from_owner: Id = "",
) -> Response:
    if mode == "one":
        result = api.reassign(
            api.ReassignCustomers(customer_ids=[customer_id], new_owner_id=to_owner),
            me.auth,
            context,
            session,
        )
    else:
        result = api.reassign_owner(
            api.ReassignOwner(from_owner_id=from_owner, new_owner_id=to_owner),
            me.auth,
            context,
            session,
        )
    t = translator(negotiate(request))
    reps = _reps(session, me)
    session.rollback()
    flash = t(
        "re.done",
        customers=result.customers,
        records=result.moved_records,
        to_name=reps.get(to_owner, to_owner),
    )
    return _page(request, me, session, reps, flash=flash)
