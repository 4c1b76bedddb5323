"""How report SQL reaches the fields of a record: a *typed view* of one collection.

A record's fields live in ``records.data`` as canonical JSON **text** (served verbatim to
pulls, so it stays text). A report asks for a collection as a subquery with typed
columns — ``view("opportunities", {"amount": NUMBER, "status": TEXT, ...})`` — and
writes ordinary SQL (joins, ``GROUP BY``, ``SUM``) over it. Each database unpacks the
JSON its own way, measured in ``bench/report_bench.py`` (figures in
``docs/benchmarks.md``):

* **PostgreSQL**: ``jsonb_to_record(data::jsonb) AS x(amount numeric, ...)`` in the
  ``FROM`` clause. The text is parsed **once per row** however many fields the report
  reads; a ``data::jsonb ->> 'field'`` per field would parse it once per field (the
  planner does not share the cast), which measured ~1.6× slower on a five-field funnel.
* **SQLite**: ``json_extract(data, '$."field"')`` per field (SQLite has no record-typed
  unpacking; its JSON parser is fast enough at a team's size, and PostgreSQL is the
  database for scale).

No reporting table is kept beside ``records``: with the views above every report runs
in well under the 500 ms budget at 200,000 records on PostgreSQL, and a second copy of
the fields would have to be maintained by every write path (push, reassignment, merge,
purge) inside their transactions — cost and risk on the hot path for no measured need.

Field kinds, the same meaning on both databases:

* ``TEXT`` — the JSON string (enums, ids, names).
* ``NUMBER`` — numeric (PostgreSQL ``numeric``: money sums are exact; SQLite ``REAL``).
* ``FLAG`` — a JSON boolean as ``1``/``0`` (``NULL`` when absent).
* ``DAY`` — the first ten characters of a date or date-time, ``YYYY-MM-DD``: a date-time's
  *local* calendar day in the offset it was recorded with (a deal closed at
  ``2026-10-31T23:00+08:00`` belongs to October 31, where the rep was). Compared with
  ISO date strings.
* ``EPOCH`` — a date-time as seconds since 1970 (UTC instant), for durations and for
  comparisons with a moment; ``NULL`` when absent or not an ISO date-time.
* ``DAYNUM`` — a date (``YYYY-MM-DD``) as whole days since 1970-01-01, for date
  arithmetic ("ends within its own reminder window"); ``NULL`` when not a date.

Scope is a predicate on the underlying ``records`` row (owner, customer), applied inside
every view, so a report can never join its way to a row the caller may not see.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Any, cast

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Date,
    DateTime,
    Integer,
    Numeric,
    Subquery,
    Table,
    Text,
    and_,
    case,
    column,
    extract,
    func,
    literal_column,
    or_,
    select,
    true,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from ..accounts import Principal
from ..models import Record

records_t = cast(Table, Record.__table__)

#: A date-time text PostgreSQL can cast safely (anything else reads as NULL, as in SQLite).
_PG_DATETIME = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}"
_PG_DATE = r"^\d{4}-\d{2}-\d{2}$"


class Kind(Enum):
    TEXT = "text"
    NUMBER = "number"
    FLAG = "flag"
    DAY = "day"
    EPOCH = "epoch"
    DAYNUM = "daynum"


TEXT, NUMBER, FLAG, DAY, EPOCH = Kind.TEXT, Kind.NUMBER, Kind.FLAG, Kind.DAY, Kind.EPOCH
DAYNUM = Kind.DAYNUM


@dataclass(frozen=True, slots=True)
class F:
    """Column ``key`` of the JSON object read as ``kind`` (see the module docstring)."""

    key: str
    kind: Kind


Columns = Mapping[str, "F | Kind"]

_PG_TYPES: dict[Kind, Any] = {
    Kind.TEXT: Text(),
    Kind.NUMBER: Numeric(),
    Kind.FLAG: Boolean(),
    Kind.DAY: Text(),
    Kind.EPOCH: Text(),
    Kind.DAYNUM: Text(),
}


def scope_predicate(principal: Principal, table: Any = records_t) -> ColumnElement[bool]:
    """Rows of ``table`` (``records`` or an alias) the caller sees: reference data (no
    owner) and, below admin, the records of the owners in their scope.

    The rule is the sync engine's (:meth:`Principal.sees_owner`) written as SQL.
    """
    if principal.role == "admin":
        return true()
    if principal.role == "manager":
        owners = sorted(principal.team_member_ids | {principal.user_id})
    else:
        owners = [principal.user_id]
    return or_(table.c.owner_id.is_(None), table.c.owner_id.in_(owners))


def _normalise(columns: Columns) -> dict[str, F]:
    return {name: spec if isinstance(spec, F) else F(name, spec) for name, spec in columns.items()}


def view(
    dialect: str,
    collection: str,
    columns: Columns,
    principal: Principal,
    *,
    name: str,
    include_deleted: bool = False,
) -> Subquery:
    """Live records of ``collection`` in the caller's scope as a typed subquery with
    columns ``id``, ``owner_id``, ``customer_id``, ``created_at_ms`` and ``columns``."""
    specs = _normalise(columns)
    r = records_t.alias(f"{name}_r")
    meta = [
        r.c.record_id.label("id"),
        r.c.owner_id.label("owner_id"),
        r.c.customer_id.label("customer_id"),
        r.c.created_at_ms.label("created_at_ms"),
    ]
    where = [r.c.collection == collection, scope_predicate(principal, r)]
    if not include_deleted:
        where.append(r.c.deleted.is_(False))
    if dialect == "postgresql" and specs:
        keys: dict[str, Kind] = {}
        for spec in specs.values():
            keys.setdefault(spec.key, spec.kind)
        unpacked = (
            func.jsonb_to_record(sql_cast(r.c.data, JSONB))
            .table_valued(*(column(k, _PG_TYPES[kind]) for k, kind in keys.items()))
            .render_derived(name=f"{name}_x", with_types=True)
        )
        fields = [_pg_field(unpacked.c[s.key], s.kind).label(n) for n, s in specs.items()]
        stmt = select(*meta, *fields).select_from(r).join(unpacked, true())
    else:
        fields = [_sqlite_field(r.c.data, s).label(n) for n, s in specs.items()]
        stmt = select(*meta, *fields).select_from(r)
    return stmt.where(and_(*where)).subquery(name)


def _pg_field(value: Any, kind: Kind) -> ColumnElement[Any]:
    if kind is Kind.FLAG:
        return sql_cast(value, Integer)
    if kind is Kind.DAY:
        return func.substr(value, 1, 10)
    if kind is Kind.EPOCH:
        instant = sql_cast(value, DateTime(timezone=True))
        return case((value.op("~")(_PG_DATETIME), extract("epoch", instant)), else_=None)
    if kind is Kind.DAYNUM:
        days = sql_cast(value, Date) - literal_column("DATE '1970-01-01'")
        return case((value.op("~")(_PG_DATE), days), else_=None)
    return cast(ColumnElement[Any], value)


def _sqlite_field(data: Any, spec: F) -> ColumnElement[Any]:
    raw = func.json_extract(data, f'$."{spec.key}"')
    if spec.kind is Kind.NUMBER:
        return sql_cast(raw, Numeric)
    if spec.kind is Kind.FLAG:
        return case((raw.is_(None), None), else_=sql_cast(raw, Integer))
    if spec.kind is Kind.DAY:
        return func.substr(raw, 1, 10)
    if spec.kind is Kind.EPOCH:
        return sql_cast(func.strftime("%s", raw), Integer)
    if spec.kind is Kind.DAYNUM:
        return sql_cast(func.julianday(raw) - 2440587.5, Integer)
    return cast(ColumnElement[Any], raw)


def created_day(dialect: str, created_at_ms: Any) -> ColumnElement[str]:
    """The UTC calendar day a record reached the server, ``YYYY-MM-DD``."""
    if dialect == "postgresql":
        return func.to_char(
            func.timezone("UTC", func.to_timestamp(created_at_ms / 1000.0)), "YYYY-MM-DD"
        )
    return func.date(created_at_ms / 1000, "unixepoch")


def prepare(session: Session) -> str:
    """Start a report's read: PostgreSQL reads naive date-times as UTC. Returns the
    dialect name the views are built for."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(select(func.set_config("TimeZone", "UTC", True)))
    return dialect


def money(value: Any) -> float:
    """A sum of amounts for the answer: 0 when there were none, two decimals."""
    if value is None:
        return 0.0
    return round(float(value), 2)


def ratio(numerator: Any, denominator: Any, places: int = 4) -> float | None:
    """``numerator ÷ denominator`` rounded, ``None`` when the denominator is 0 or NULL."""
    if not denominator:
        return None
    return round(float(numerator or 0) / float(denominator), places)


def mean(value: Any, places: int = 2) -> float | None:
    if value is None:
        return None
    return round(float(value), places)


def as_float(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return float(value)
    return float(value)


__all__ = [
    "DAY",
    "EPOCH",
    "FLAG",
    "NUMBER",
    "TEXT",
    "F",
    "Kind",
    "created_day",
    "money",
    "prepare",
    "ratio",
    "scope_predicate",
    "view",
]
