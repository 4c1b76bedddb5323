"""CSV import of customers, leads, contacts and opportunities, with a validation report.

The file's header names the entity's fields (``id`` optional; for customers and leads an
``owner_id`` column assigns the rep of your team who owns the row). Each data row is
checked in order:

1. every cell converts to its field's type (numbers, booleans ``true/false/1/0/yes/no``,
   tags separated by ``;``, JSON objects for JSON and location fields);
2. the record validates against the entity schema (required fields, choices, formats);
3. references exist in the caller's scope (a contact's customer, an opportunity's stage);
4. it is no **duplicate** — of an existing record or of an earlier accepted row of the
   same file. Customers and leads use the same normalised keys as every other write
   path (:mod:`server.crm.keys`: phone/mobile digits, e-mail, name + company folded to
   pinyin; leads are compared with leads and customers) and are reported with code
   ``possible_duplicate``; ``allow_duplicates`` imports them anyway (the override of
   ``Mutation.override``). Contacts are compared by phone and e-mail, opportunities by
   customer and name (code ``duplicate``).

A row with any error imports nothing and is listed in the report as ``(row, field,
code, message)`` — ``row`` is the line as a spreadsheet numbers it (the header is row 1).
The accepted rows are then pushed as one batch through the sync engine, so they reach
the reps' phones like any write and pass every server rule; with ``atomic`` any error
imports nothing at all.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from sync_protocol import EntitySchema, FieldType, MutationStatus
from sync_protocol.messages import ID_PATTERN

from ..accounts import Principal
from ..context import ServerContext
from ..crm.duplicates import TARGETS as DUPLICATE_TARGETS
from ..crm.keys import duplicate_keys as crm_duplicate_keys
from ..models import Record, RecordKey, User
from ..repository import lock_counter
from .csvout import restore_neutralised
from .records import apply_mutations, load_rows, make_mutation, new_record_id

IMPORTABLE = ("customers", "leads", "contacts", "opportunities")
#: Entities whose rows may name their owner (owner-scoped).
OWNED = ("customers", "leads")
_ID = re.compile(ID_PATTERN)
_TRUE = {"true", "1", "yes", "y", "是"}
_FALSE = {"false", "0", "no", "n", "否"}
_ADMIN_VIEW = Principal(user_id="", role="admin")
keys_t = cast(Table, RecordKey.__table__)
records_t = cast(Table, Record.__table__)


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
    allow_duplicates: bool = Field(
        default=False,
        description="Import customers and leads even when they look like existing ones "
        "(overrides `possible_duplicate`).",
    )


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
    if collection in DUPLICATE_TARGETS:
        for key in sorted(crm_duplicate_keys(fields)):
            yield _KEY_FIELD[key[0]], key
        return
    if collection == "opportunities":
        name = fields.get("name")
        if isinstance(name, str) and fields.get("customer_id"):
            yield "name", f"opp:{fields['customer_id']}:{name.strip().casefold()}"
        return
    phone = normalise_phone(fields.get("phone"))
    if phone:
        yield "phone", f"phone:{phone}"
    email = normalise_email(fields.get("email"))
    if email:
        yield "email", f"email:{email}"


_KEY_FIELD = {"p": "phone", "e": "email", "n": "name"}


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
        self._check(rows, allow_duplicates=request.allow_duplicates)
        accepted = [r for r in rows if not r.errors]
        if not request.dry_run and accepted and not (request.atomic and len(accepted) < len(rows)):
            self._write(accepted, allow_duplicates=request.allow_duplicates)
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
            # An exported cell neutralised against formulas ('=…, '+86…) reads back as it was.
            text = restore_neutralised(cell or "") if isinstance(cell, str) else ""
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
                if self.entity.name in OWNED:
                    row.owner_id = text.strip()
                continue
            spec = self.entity.fields[name]
            try:
                row.fields[name] = convert_cell(spec.type, text)
            except ValueError as exc:
                row.fail(name, "type", f"{name}: {text!r} is not a {spec.type.value} ({exc})")
        row.record_id = row.record_id or new_record_id()
        return row

    def _check(self, rows: list[_Row], *, allow_duplicates: bool = False) -> None:
        collection = self.entity.name
        customers = {c.id for c in load_rows(self.conn, self.principal, "customers")}
        stages = {s.id for s in load_rows(self.conn, self.principal, "pipeline_stages")}
        existing_ids = self._existing_ids([r.record_id for r in rows])
        existing = self._existing_keys(rows)
        seen: dict[str, int] = {}
        seen_ids: set[str] = set()
        soft = collection in DUPLICATE_TARGETS
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
            code = "possible_duplicate" if soft else "duplicate"
            for name, key in keys:
                if soft and allow_duplicates:
                    break
                match = existing.get(key)
                if match is not None:
                    shown = match[0] if self.principal.sees_owner(match[1]) else "(hidden)"
                    row.fail(name, code, f"same {name} as existing record {shown}")
                elif key in seen:
                    row.fail(name, code, f"same {name} as row {seen[key]}")
            if not row.errors:
                seen_ids.add(row.record_id)
                for _name, key in keys:
                    seen.setdefault(key, row.number)

    def _existing_ids(self, ids: list[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(ids), 500):
            stmt = select(records_t.c.record_id).where(
                records_t.c.collection == self.entity.name,
                records_t.c.record_id.in_(ids[start : start + 500]),
            )
            found.update(self.conn.execute(stmt).scalars())
        return found

    def _existing_keys(self, rows: list[_Row]) -> dict[str, tuple[str, str | None]]:
        """key -> (record id, owner) of live records the rows could duplicate."""
        collection = self.entity.name
        out: dict[str, tuple[str, str | None]] = {}
        if collection in DUPLICATE_TARGETS:
            wanted = sorted({k for r in rows for _n, k in duplicate_keys(collection, r.fields)})
            for start in range(0, len(wanted), 500):
                stmt = (
                    select(keys_t.c.key, records_t.c.record_id, records_t.c.owner_id)
                    .join(
                        records_t,
                        (records_t.c.collection == keys_t.c.collection)
                        & (records_t.c.record_id == keys_t.c.record_id),
                    )
                    .where(
                        keys_t.c.collection.in_(DUPLICATE_TARGETS[collection]),
                        keys_t.c.key.in_(wanted[start : start + 500]),
                        records_t.c.deleted.is_(False),
                    )
                )
                for key, rid, owner in self.conn.execute(stmt):
                    out.setdefault(key, (rid, owner))
            return out
        for rec in load_rows(self.conn, _ADMIN_VIEW, collection):
            for _name, key in duplicate_keys(collection, rec.fields):
                out.setdefault(key, (rec.id, rec.owner_id))
        return out

    def _write(self, rows: list[_Row], *, allow_duplicates: bool = False) -> None:
        override = ("possible_duplicate",) if allow_duplicates else ()
        owner_field = self.entity.owner_field
        mutations = [
            make_mutation(
                self.context,
                self.entity.name,
                r.record_id,
                fields={**r.fields, owner_field: r.owner_id} if r.owner_id else r.fields,
                override=override,
            )
            for r in rows
        ]
        results = apply_mutations(self.conn, self.context, self.principal, mutations)
        for row, result in zip(rows, results, strict=True):
            if result.status is MutationStatus.REJECTED and result.error is not None:
                fields = result.error.details.get("fields") or [{"field": ""}]
                row.fail(str(fields[0].get("field", "")), result.error.code, result.error.message)
