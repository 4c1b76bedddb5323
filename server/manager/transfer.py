"""``/v1/manager/import/{collection}`` and ``/v1/manager/export/{collection}``: CSV in and
out. Export honours the same filters as the record list and writes cells the import
reads back (tags joined with ``;``, JSON as JSON text)."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from sync_protocol import CRM_SCHEMA

from ..deps import ContextDep, SessionDep
from .common import FilterTerm, ManagerAuth, error_responses
from .csv_import import Importer, ImportReport, ImportRequest
from .csvout import csv_text
from .entities import Collection
from .records import load_rows, parse_filters, select_rows

router = APIRouter(prefix="/v1/manager", tags=["manager: import and export"])

Importable = Literal["customers", "leads", "contacts", "opportunities"]


@router.post("/import/{collection}", response_model=ImportReport, responses=error_responses())
def import_csv(
    collection: Importable,
    body: ImportRequest,
    auth: ManagerAuth,
    context: ContextDep,
    session: SessionDep,
) -> ImportReport:
    """Import rows from CSV; the report lists every rejected row's errors."""
    importer = Importer(session, context, auth.principal, CRM_SCHEMA[collection])
    report = importer.run(body)
    if body.dry_run or (body.atomic and report.failed) or not report.imported:
        session.rollback()
    else:
        session.commit()
    return report


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ";".join(value)
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return value


@router.get(
    "/export/{collection}",
    responses={
        **error_responses(),
        200: {
            "description": "The records as CSV (header: id, version, owner_id, then fields).",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        },
    },
    response_class=Response,
)
def export_csv(
    collection: Collection,
    auth: ManagerAuth,
    session: SessionDep,
    filter: Annotated[
        list[FilterTerm],
        Query(description="Field equality, `field:value` (as in the record list)."),
    ] = [],  # noqa: B006 - FastAPI reads the default, never mutates it
    q: Annotated[str | None, Query(max_length=200)] = None,
    owner_id: Annotated[str | None, Query(max_length=64)] = None,
    sort: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """Every matching record in your scope as CSV."""
    entity = CRM_SCHEMA[collection]
    rows = select_rows(
        load_rows(session.connection(), auth.principal, collection),
        filters=parse_filters(filter),
        search=q,
        search_fields=entity.search_fields,
        owner_id=owner_id,
        sort=sort,
    )
    session.rollback()
    names = [n for n in entity.fields if n != "owner_id"]
    columns = ["id", "version", "owner_id", *names]
    lines = (
        {
            "id": r.id,
            "version": r.version,
            "owner_id": r.owner_id,
            **{n: _cell(r.fields.get(n)) for n in names},
        }
        for r in rows
    )
    return Response(
        csv_text(lines, columns),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{collection}.csv"'},
    )
