"""``/v1/manager/records/{collection}``: list, get, create, update, delete any CRM entity.

Every write goes through the sync engine (:func:`.records.write_record`), so it gets a
version and reaches the reps' phones on their next pull. Updates and deletes carry the
version they were based on — ``If-Match: "12"`` or ``base_version`` in the body — and a
stale one is answered ``412 precondition_failed`` with ``details.current`` holding the
record as it is now (Kinto's ``412`` with ``details.existing``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, Header, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from sync_protocol import CRM_SCHEMA, ValidationFailed
from sync_protocol.errors import FieldError
from sync_protocol.messages import ID_PATTERN

from ..deps import ContextDep, SessionDep
from .common import FilterTerm, ManagerAuth, RecordOut, RecordPage, error_responses
from .records import (
    load_rows,
    new_record_id,
    parse_filters,
    select_rows,
    visible_row,
    write_record,
)
from .search import search_rows, searchable

router = APIRouter(prefix="/v1/manager/records", tags=["manager: records"])

Collection = Literal[
    "customers",
    "contacts",
    "leads",
    "pipeline_stages",
    "opportunities",
    "stage_changes",
    "activities",
    "tasks",
    "contracts",
    "products",
    "quotes",
    "quote_lines",
    "campaigns",
    "campaign_members",
    "tickets",
    "ticket_comments",
    "knowledge_articles",
    "surveys",
    "satisfaction_responses",
    "sales_targets",
    "custom_field_defs",
]
assert set(get_args(Collection)) == set(CRM_SCHEMA.entities), "Collection is out of date"

RecordIdPath = Annotated[str, Path(pattern=ID_PATTERN, description="The record id.")]
IfMatch = Annotated[
    str | None,
    Header(
        description='The version the change is based on, e.g. `"12"` (see `version`).',
        pattern=r'^(W/)?"?[0-9]{1,18}"?$',
    ),
]


class CreateRecord(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "fields": {"name": "李四", "status": "potential", "phone": "+86 139 0000 0000"},
                    "owner_id": "u-rep1",
                }
            ]
        },
    )

    id: str | None = Field(
        default=None, pattern=ID_PATTERN, description="Record id; generated when omitted."
    )
    fields: dict[str, Any] = Field(description="The record's fields (validated by the schema).")
    owner_id: str | None = Field(
        default=None,
        pattern=ID_PATTERN,
        description="Customers, leads and sales targets: the rep of your team who owns it "
        "(default: the caller).",
    )
    override: list[Literal["possible_duplicate"]] = Field(
        default_factory=list,
        description="Soft checks to override deliberately: `possible_duplicate` saves a "
        "record that matches another one.",
    )


class UpdateRecord(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"fields": {"status": "intent"}, "base_version": 42}]},
    )

    fields: dict[str, Any] = Field(description="Changed fields only (a patch).")
    base_version: int | None = Field(
        default=None, ge=0, description="Version the change is based on (or If-Match)."
    )
    override: list[Literal["possible_duplicate"]] = Field(
        default_factory=list, description="Soft checks to override (see create)."
    )


class DeleteResult(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"id": "c-1", "collection": "customers", "version": 43}]}
    )

    id: str
    collection: str
    version: int | None


def _base_version(if_match: str | None, body_version: int | None, *, required: bool) -> int | None:
    header = None
    if if_match is not None:
        digits = if_match.removeprefix("W/").strip('"')
        header = int(digits)
    if header is not None and body_version is not None and header != body_version:
        raise ValidationFailed(
            "If-Match and base_version disagree",
            errors=[FieldError(field="base_version", code="mismatch", message="differs")],
        )
    version = header if header is not None else body_version
    if version is None and required:
        raise ValidationFailed(
            "an update must say which version it is based on (If-Match or base_version)",
            errors=[
                FieldError(field="base_version", code="required", message="required for updates")
            ],
        )
    return version


def _etag(response: Response, record: RecordOut) -> RecordOut:
    response.headers["ETag"] = f'"{record.version}"'
    return record


@router.get("/{collection}", response_model=RecordPage, responses=error_responses())
def list_records(
    collection: Collection,
    auth: ManagerAuth,
    session: SessionDep,
    filter: Annotated[
        list[FilterTerm],
        Query(description="Field equality, `field:value`; repeat for AND. Tags match a member."),
    ] = [],  # noqa: B006 - FastAPI reads the default, never mutates it
    q: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Search by characters, pinyin or initials (`zs` finds 张三); "
            "answers in pinyin order.",
        ),
    ] = None,
    owner_id: Annotated[str | None, Query(max_length=64, description="Owning rep.")] = None,
    sort: Annotated[
        str | None,
        Query(
            max_length=64,
            description="Field to sort by; prefix `-` for descending; `pinyin` sorts by the "
            "name's pinyin (安 < 白 < 张).",
        ),
    ] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> RecordPage:
    """Records of one entity in your scope (team for a manager, all for an admin).

    ``q`` searches by characters, pinyin and initials (``zs`` finds 张三) and answers in
    pinyin order; ``sort=pinyin`` (or ``-pinyin``) is that order without a query."""
    entity = CRM_SCHEMA[collection]
    conn = session.connection()
    filters = parse_filters(filter)
    by_pinyin = sort in ("pinyin", "-pinyin")
    if searchable(collection) and (q or by_pinyin):
        plain = not filters and (sort is None or by_pinyin)
        total, rows = search_rows(
            conn,
            auth.principal,
            collection,
            q,
            descending=sort == "-pinyin",
            page=(offset, limit) if plain else None,
            owner_id=owner_id,
        )
        if not plain:
            rows = select_rows(rows, filters=filters, sort=None if by_pinyin else sort)
            total, rows = len(rows), rows[offset : offset + limit]
        session.rollback()
        return RecordPage(total=total, offset=offset, limit=limit, items=[r.out() for r in rows])
    rows = select_rows(
        load_rows(conn, auth.principal, collection),
        filters=filters,
        search=q,
        search_fields=entity.search_fields,
        owner_id=owner_id,
        sort=sort,
    )
    session.rollback()
    return RecordPage(
        total=len(rows),
        offset=offset,
        limit=limit,
        items=[r.out() for r in rows[offset : offset + limit]],
    )


@router.get("/{collection}/{record_id}", response_model=RecordOut, responses=error_responses(404))
def get_record(
    collection: Collection,
    record_id: RecordIdPath,
    auth: ManagerAuth,
    session: SessionDep,
    response: Response,
) -> RecordOut:
    """One record; the ``ETag`` header carries its version for a later ``If-Match``."""
    row = visible_row(session.connection(), auth.principal, collection, record_id)
    session.rollback()
    return _etag(response, row.out())


@router.post(
    "/{collection}",
    response_model=RecordOut,
    status_code=201,
    responses=error_responses(404, 409),
)
def create_record(
    collection: Collection,
    body: CreateRecord,
    auth: ManagerAuth,
    context: ContextDep,
    session: SessionDep,
    response: Response,
) -> RecordOut:
    """Create a record (pushed like a device write: devices in scope pull it)."""
    outcome = write_record(
        session,
        context,
        auth.principal,
        collection,
        body.id or new_record_id(),
        op="upsert",
        fields=body.fields,
        creating=True,
        new_owner_id=body.owner_id,
        override=body.override,
    )
    assert outcome.row is not None
    return _etag(response, outcome.row.out())


@router.patch(
    "/{collection}/{record_id}",
    response_model=RecordOut,
    responses=error_responses(404, 409, 412),
)
def update_record(
    collection: Collection,
    record_id: RecordIdPath,
    body: UpdateRecord,
    auth: ManagerAuth,
    context: ContextDep,
    session: SessionDep,
    response: Response,
    if_match: IfMatch = None,
) -> RecordOut:
    """Patch a record. A stale base version answers 412 with ``details.current``."""
    version = _base_version(if_match, body.base_version, required=True)
    outcome = write_record(
        session,
        context,
        auth.principal,
        collection,
        record_id,
        op="upsert",
        fields=body.fields,
        base_version=version,
        override=body.override,
    )
    assert outcome.row is not None
    return _etag(response, outcome.row.out())


@router.delete(
    "/{collection}/{record_id}",
    response_model=DeleteResult,
    responses=error_responses(404, 409, 412),
)
def delete_record(
    collection: Collection,
    record_id: RecordIdPath,
    auth: ManagerAuth,
    context: ContextDep,
    session: SessionDep,
    if_match: IfMatch = None,
    base_version: Annotated[int | None, Query(ge=0)] = None,
) -> DeleteResult:
    """Delete a record (a tombstone devices pull). ``If-Match`` is honoured when sent."""
    version = _base_version(if_match, base_version, required=False)
    outcome = write_record(
        session,
        context,
        auth.principal,
        collection,
        record_id,
        op="delete",
        base_version=version,
    )
    return DeleteResult(
        id=record_id,
        collection=collection,
        version=outcome.row.version if outcome.row else None,
    )
