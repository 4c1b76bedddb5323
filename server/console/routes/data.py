"""Reports (tables, a chart, CSV download) and CSV import with its error report.

Reports are the manager API's (:mod:`server.reports.routes`), asked for in their
CSV form so each has one flat table; the console shows that table and offers the same
CSV with a BOM. Imports run the manager API's importer on the decoded, relabelled file.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import File, Form, Query, Request, Response, UploadFile

from ...deps import AuthContext, ContextDep, SessionDep
from ...manager import transfer
from ...manager.csv_import import ImportRequest
from ...reports import followups
from ...reports import routes as api
from ...reports.base import ReportContext
from ..i18n import negotiate, translator
from ..services import csv_files
from ..session import ConsoleUser, ConsoleUserDep, ConsoleWriterDep
from ..templating import render
from .common import BOM, page_router

router = page_router()
ReportName = Literal[
    "funnel", "performance", "leads", "campaigns", "tickets", "contracts", "overdue"
]
REPORTS: tuple[str, ...] = (
    "funnel",
    "performance",
    "leads",
    "campaigns",
    "tickets",
    "contracts",
    "overdue",
)
Importable = Literal["customers", "contacts", "opportunities"]
MAX_UPLOAD = 20 * 1024 * 1024


def _month(today: date) -> tuple[date, date]:
    start = today.replace(day=1)
    return start, (start + timedelta(days=32)).replace(day=1) - timedelta(days=1)


def _csv(name: str, auth: AuthContext, session: SessionDep, params: dict[str, Any]) -> str:
    runners: dict[str, Callable[[], Any]] = {
        "funnel": lambda: api.funnel(auth, session, format="csv"),
        "performance": lambda: api.rep_performance(
            auth, session, start=params["start"], end=params["end"], format="csv"
        ),
        "leads": lambda: api.lead_conversion(auth, session, format="csv"),
        "campaigns": lambda: api.campaigns(auth, session, format="csv"),
        "tickets": lambda: api.tickets(auth, session, format="csv"),
        "contracts": lambda: api.contracts_expiring(
            auth, session, days=params["days"], today=None, format="csv"
        ),
        "overdue": lambda: api.overdue_follow_ups(auth, session, as_of=None, format="csv"),
    }
    answer = runners[name]()
    session.rollback()
    return bytes(answer.body).decode("utf-8")


def _params(start: str, end: str, days: int) -> dict[str, Any]:
    first, last = _month(datetime.now(UTC).date())
    try:
        first = date.fromisoformat(start) if start else first
        last = date.fromisoformat(end) if end else last
    except ValueError:
        pass
    return {"start": first, "end": last, "days": days}


@router.get("/reports")
def reports_index(request: Request, me: ConsoleUserDep) -> Response:
    return render(request, "reports.html", me=me, nav="reports", reports=REPORTS, report=None)


@router.get("/reports/{name}.csv")
def report_csv(
    name: ReportName,
    me: ConsoleUserDep,
    session: SessionDep,
    start: Annotated[str, Query(max_length=10)] = "",
    end: Annotated[str, Query(max_length=10)] = "",
    days: Annotated[int, Query(ge=0, le=3650)] = 30,
) -> Response:
    text = _csv(name, me.auth, session, _params(start, end, days))
    return Response(
        BOM + text.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


@router.get("/reports/{name}")
def report_page(
    request: Request,
    name: ReportName,
    me: ConsoleUserDep,
    session: SessionDep,
    start: Annotated[str, Query(max_length=10)] = "",
    end: Annotated[str, Query(max_length=10)] = "",
    days: Annotated[int, Query(ge=0, le=3650)] = 30,
) -> Response:
    params = _params(start, end, days)
    if name == "overdue":
        # Per rep, counted: the full list (one line per task and customer, thousands in
        # a big team) is the CSV download.
        header, body = _overdue_summary(session, me)
    else:
        rows = list(csv.reader(io.StringIO(_csv(name, me.auth, session, params))))
        header, body = (rows[0], rows[1:]) if rows else ([], [])
    chart = _chart(header, body)
    return render(
        request,
        "reports.html",
        me=me,
        nav="reports",
        reports=REPORTS,
        report=name,
        header=header,
        body=body,
        chart_data=chart,
        params={
            "start": params["start"].isoformat(),
            "end": params["end"].isoformat(),
            "days": days,
        },
    )


def _overdue_summary(session: SessionDep, me: ConsoleUser) -> tuple[list[str], list[list[str]]]:
    ctx = ReportContext(session, me.principal)
    counts = followups.overdue_counts(ctx, datetime.now(UTC))
    names = ctx.people(reps_only=False)
    session.rollback()
    body = [
        [names.get(owner, owner), str(tasks), str(customers)]
        for owner, (tasks, customers) in sorted(
            counts.items(), key=lambda kv: names.get(kv[0], kv[0])
        )
    ]
    return ["name", "overdue_tasks", "overdue_follow_ups"], body


def _chart(header: list[str], body: list[list[str]]) -> dict[str, Any] | None:
    """A bar chart of the first numeric column against the first label-like column."""
    if not header or not body:
        return None
    label_col = next(
        (i for i, h in enumerate(header) if h in ("name", "status", "source", "title")), 0
    )

    def numeric(i: int) -> bool:
        try:
            for row in body:
                float(row[i] or 0)
        except (ValueError, IndexError):
            return False
        return header[i] not in ("position",) and i != label_col

    value_col = next((i for i in range(len(header)) if numeric(i)), None)
    if value_col is None:
        return None
    return {
        "names": [row[label_col] for row in body],
        "series": [
            {"name": header[value_col], "values": [float(row[value_col] or 0) for row in body]}
        ],
    }


@router.get("/import")
def import_form(request: Request, me: ConsoleUserDep) -> Response:
    return render(
        request,
        "import.html",
        me=me,
        nav="import",
        report=None,
        error="",
        encoding="",
        collection="customers",
    )


@router.get("/import/template/{collection}.csv")
def import_template(request: Request, collection: Importable, me: ConsoleUserDep) -> Response:
    text = csv_files.template(collection, negotiate(request))
    return Response(
        BOM + text.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{collection}-template.csv"'},
    )


@router.post("/import")
async def import_file(
    request: Request,
    me: ConsoleWriterDep,
    context: ContextDep,
    session: SessionDep,
    collection: Annotated[Importable, Form()],
    file: Annotated[UploadFile, File()],
    mode: Annotated[str, Form(pattern="^(check|import)$")] = "check",
    atomic: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    t = translator(negotiate(request))
    data = await file.read(MAX_UPLOAD + 1)

    def page(**extra: Any) -> Response:
        values: dict[str, Any] = {
            "report": None,
            "error": "",
            "encoding": "",
            "collection": collection,
        }
        values.update(extra)
        return render(request, "import.html", me=me, nav="import", **values)

    if not data.strip():
        return page(error=t("imp.empty"))
    try:
        decoded = csv_files.decode(data)
    except csv_files.Unreadable:
        return page(error=t("imp.unreadable"))
    body = ImportRequest(
        csv=csv_files.to_field_names(collection, decoded.text),
        dry_run=mode == "check",
        atomic=bool(atomic),
    )
    report = transfer.import_csv(collection, body, me.auth, context, session)
    return page(report=report, encoding=decoded.encoding)
