"""The dashboard: ``/console/``."""

from __future__ import annotations

from fastapi import Request, Response

from ...deps import ContextDep, SessionDep
from ..services import dashboard
from ..session import ConsoleUserDep
from ..templating import render
from .common import page_router

router = page_router()


@router.get("/")
def dashboard_page(
    request: Request, me: ConsoleUserDep, session: SessionDep, context: ContextDep
) -> Response:
    view = dashboard.build(session, context, me)
    return render(request, "dashboard.html", me=me, view=view, nav="dashboard")
