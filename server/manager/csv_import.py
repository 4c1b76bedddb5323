"""CSV import of customers, contacts and opportunities, with a validation report.

The file's header names the entity's fields (``id`` optional; for customers an
``owner_id`` column assigns the rep). Each data row is checked in order:

1. every cell converts to its field's type (numbers, booleans ``true/false/1/0/yes/no``,
   tags separated by ``;``, JSON objects for JSON and location fields);
2. the record validates against the entity schema (required fields, choices, formats);
3. references exist in the caller's scope (a contact's customer, an opportunity's stage);
4. it is no **duplicate** — of an existing record or of an earlier accepted row of the
   same file: customers and contacts by phone (digits only; customers' ``phone`` and
   ``mobile``) and e-mail (case-insensitive), opportunities by customer and name.

A row with any error imports nothing and is listed in the report as ``(row, field,
code, message)`` — ``row`` is the line as a spreadsheet numbers it (the header is row 1).
The accepted rows are then pushed as one batch through the sync engine, so they reach
the reps' phones like any write; with ``atomic`` any error imports nothing at all.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from sync_protocol import EntitySchema, FieldType, MutationStatus
from sync_protocol.hlc import wall_clock_ms
from sync_protocol.messages import ID_PATTERN

from ..accounts import Principal
from ..context import ServerContext
from ..models import User
from ..repository import lock_counter, reassign_customers
from .records import StoredRow, apply_mutations, load_rows, make_mutation, new_record_id

IMPORTABLE = ("customers", "contacts", "opportunities")
_ID = re.compile(ID_PATTERN)
_TRUE = {"true", "1", "yes", "y", "是"}
_FALSE = {"false", "0", "no", "n", "否"}
_ADMIN_VIEW = Principal(user_id="", role="admin")


class ImportRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "csv": "name,status,phone,email\n张三,potential,+86 138 0000 0001,zs@example.cn\n",
                    "dry_run": False,
                    "atomic": False,
                }
            ]
        },
    )

    csv: str = Field(max_length=20_000_000, description="The CSV text, header first (UTF-8).")
    dry_run: bool = Field(default=False, description="Validate and report; import nothing.")
    atomic: bool = Field(default=False, description="Any error imports nothing at all.")


class RowError(BaseModel):
    row: int = Field(description="Spreadsheet row number: the header is row 1.")
    field: str
    code: str
    message: str


class ImportReport(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "collection": "customers",
                    "rows": 3,
                    "imported": 2,
                    "failed": 1,
                    "dry_run": False,
                    "errors": [
                        {
                            "row": 3,
                            "field": "phone",
                            "code": "duplicate",
                            "message": "same phone as row 2",
                        }
                    ],
                    "ids": ["r-1", "r-2"],
                }
            ]
        }
    )

    collection: str
    rows: int
    imported: int
    failed: int = Field(description="Rows with at least one error (none of them imported).")
    dry_run: bool
    errors: list[RowError]
    ids: list[str] = Field(description="Ids of the imported (or, dry run, importable) rows.")


def normalise_phone(value: Any) -> str | None:
    digits = re.sub(r"\D", "", value) if isinstance(value, str) else ""
    return digits if len(digits) >= 5 else None


def normalise_email(value: Any) -> str | None:
    return value.strip().casefold() if isinstance(value, str) and value.strip() else None


def duplicate_keys(collection: str, fields: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(field, key) pairs two records of ``collection`` must not share."""
    if collection == "opportunities":
        name = fields.get("name")
        if isinstance(name, str) and fields.get("customer_id"):
            yield "name", f"opp:{fields['customer_id']}:{name.strip().casefold()}"
        return
    phones = ("phone", "mobile") if collection == "customers" else ("phone",)
    for name in phones:
        phone = normalise_phone(fields.get(name))
        if phone:
            yield name, f"phone:{phone}"
    email = normalise_email(fields.get("email"))
    if email:
        yield "email", f"email:{email}"


def convert_cell(spec_type: FieldType, raw: str) -> Any:
    """The JSON value of a CSV cell; ``ValueError`` with a message when it cannot be."""
    if spec_type is FieldType.INTEGER:
        return int(raw)
    if spec_type is FieldType.NUMBER:
        try:
            return int(raw)
        except ValueError:
            number = float(raw)
            if not math.isfinite(number):
                raise ValueError("not a finite number") from None
            return number
    if spec_type is FieldType.BOOLEAN:
        low = raw.casefold()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError("not true/false")
    if spec_type is FieldType.TAGS:
        return [t.strip() for t in raw.split(";") if t.strip()]
    if spec_type in (FieldType.JSON, FieldType.GEO):
        return json.loads(raw)
    if spec_type is FieldType.TEXT:
        return raw
    return raw.strip()


@dataclass
class _Row:
    number: int
    record_id: str
    fields: dict[str, Any]
    owner_id: str | None = None
    errors: list[RowError] = field(default_factory=list)

    def fail(self, name: str, code: str, message: str) -> None:
        self.errors.append(RowError(row=self.number, field=name, code=code, message=message))


class Importer:
    """One import: parse, check every row, push the accepted ones (caller commits)."""

    def __init__(
        self,
        session: Session,
        context: ServerContext,
        principal: Principal,
        entity: EntitySchema,
    ) -> None:
        self.session = session
        self.context = context
        self.principal = principal
        self.entity = entity
        self.conn = session.connection()

    def run(self, request: ImportRequest) -> ImportReport:
        collection = self.entity.name
        lock_counter(self.conn)  # the duplicate check and the write see the same data
        reader = csv.DictReader(io.StringIO(request.csv.lstrip("\ufeff")))
        header = [h.strip() for h in reader.fieldnames or []]
        allowed = {"id", "version", "owner_id", *self.entity.fields}
        header_errors = [
            RowError(row=1, field=h, code="unknown_column", message=f"{collection} has no {h}")
            for h in header
            if h not in allowed
        ]
        if not header:
            header_errors.append(
                RowError(row=1, field="", code="empty", message="the file has no header")
            )
        if header_errors:
            return ImportReport(
                collection=collection,
                rows=0,
                imported=0,
                failed=0,
                dry_run=request.dry_run,
                errors=header_errors,
                ids=[],
            )
        rows = [self._parse(i + 2, raw) for i, raw in enumerate(reader)]
        self._check(rows)
        accepted = [r for r in rows if not r.errors]
        if not request.dry_run and accepted and not (request.atomic and len(accepted) < len(rows)):
            self._write(accepted)
            accepted = [r for r in accepted if not r.errors]
        errors = sorted((e for r in rows for e in r.errors), key=lambda e: (e.row, e.field))
        failed = sum(1 for r in rows if r.errors)
        nothing = request.dry_run or (request.atomic and failed > 0)
        return ImportReport(
            collection=collection,
            rows=len(rows),
            imported=0 if nothing else len(accepted),
            failed=failed,
            dry_run=request.dry_run,
            errors=errors,
            ids=[] if request.atomic and failed else [r.record_id for r in accepted],
        )

    def _parse(self, number: int, raw: dict[str | Any, Any]) -> _Row:
        row = _Row(number, "", {})
        for key, cell in raw.items():
            if key is None:  # more cells than header columns
                row.fail("", "extra_cells", "the row has more cells than the header")
                continue
            name = key.strip()
            text = (cell or "") if isinstance(cell, str) else ""
            if not text.strip():
                continue
            if name == "id":
                row.record_id = text.strip()
                if not _ID.match(row.record_id):
                    row.fail("id", "invalid_ref", "id must be a record id")
                continue
            if name == "version":  # an exported file read back: the server assigns versions
                continue
            if name == "owner_id":
                if self.entity.name == "customers":
                    row.owner_id = text.strip()
                continue
            spec = self.entity.fields[name]
            try:
                row.fields[name] = convert_cell(spec.type, text)
            except ValueError as exc:
                row.fail(name, "type", f"{name}: {text!r} is not a {spec.type.value} ({exc})")
        row.record_id = row.record_id or new_record_id()
        return row

    def _check(self, rows: list[_Row]) -> None:
        collection = self.entity.name
        customers = {c.id for c in load_rows(self.conn, self.principal, "customers")}
        stages = {s.id for s in load_rows(self.conn, self.principal, "pipeline_stages")}
        existing: dict[str, StoredRow] = {}
        existing_ids: set[str] = set()
        for rec in load_rows(self.conn, _ADMIN_VIEW, collection, include_deleted=True):
            existing_ids.add(rec.id)
            if not rec.deleted:
                for _name, key in duplicate_keys(collection, rec.fields):
                    existing.setdefault(key, rec)
        seen: dict[str, int] = {}
        seen_ids: set[str] = set()
        for row in rows:
            for err in self.entity.validate(row.fields, partial=False):
                if not any(e.field == err.field for e in row.errors):
                    row.fail(err.field, err.code, err.message)
            if row.owner_id is not None:
                owner = self.session.get(User, row.owner_id)
                if owner is None or not owner.active or not self.principal.sees_owner(owner.id):
                    row.fail("owner_id", "unknown_owner", "no such active user in your team")
            ref = row.fields.get("customer_id")
            has_parent = self.entity.fields.get("customer_id") is not None
            if has_parent and isinstance(ref, str) and ref not in customers:
                row.fail("customer_id", "unknown_customer", f"no customer {ref!r} in scope")
            stage = row.fields.get("stage_id")
            if collection == "opportunities" and isinstance(stage, str) and stage not in stages:
                row.fail("stage_id", "unknown_stage", f"no pipeline stage {stage!r}")
            if row.record_id in existing_ids or row.record_id in seen_ids:
                row.fail("id", "exists", f"a {collection} record {row.record_id!r} exists")
            if row.errors:
                continue
            keys = list(duplicate_keys(collection, row.fields))
            for name, key in keys:
                match = existing.get(key)
                if match is not None:
                    shown = match.id if self.principal.sees_owner(match.owner_id) else "(hidden)"
                    row.fail(name, "duplicate", f"same {name} as existing record {shown}")
                elif key in seen:
                    row.fail(name, "duplicate", f"same {name} as row {seen[key]}")
            if not row.errors:
                seen_ids.add(row.record_id)
                for _name, key in keys:
                    seen.setdefault(key, row.number)

    def _write(self, rows: list[_Row]) -> None:
        mutations = [
            make_mutation(self.context, self.entity.name, r.record_id, fields=r.fields)
            for r in rows
        ]
        results = apply_mutations(self.conn, self.context, self.principal, mutations)
        for row, result in zip(rows, results, strict=True):
            if result.status is MutationStatus.REJECTED and result.error is not None:
                fields = result.error.details.get("fields") or [{"field": ""}]
                row.fail(str(fields[0].get("field", "")), result.error.code, result.error.message)
        by_owner: dict[str, list[str]] = {}
        for row in rows:
            if not row.errors and row.owner_id is not None:
                by_owner.setdefault(row.owner_id, []).append(row.record_id)
        for owner, ids in sorted(by_owner.items()):
            reassign_customers(
                self.conn,
                self.principal,
                ids,
                owner,
                now_ms=wall_clock_ms(),
                server_hlc=self.context.clock.now,
            )
