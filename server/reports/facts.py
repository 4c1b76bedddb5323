"""The reporting table: the fields reports read, typed, one row per live record.

**Why a table.** Records keep their fields as canonical JSON text. Unpacking that JSON
in SQL costs every report a parse of every row it reads — at 200,000 records on
PostgreSQL ``jsonb_to_record`` made the heavier reports take seconds on this shared
machine, 10–40× the same statements over typed columns (``bench/report_bench.py``,
``docs/benchmarks.md``). So the fields reports use are copied, typed, into
``report_facts``.

**How it stays true — from the change sequence, not from every write path.** Every
change to a record (a push, a manager edit, a reassignment, a merge, a deletion) gets a
new ``records.version``, and versions become visible in commit order (see
:mod:`server.repository.state`). :func:`catch_up` reads the records whose version is
above the table's cursor — exactly like a pull — and upserts (or, for deletions,
removes) their facts, then moves the cursor, all in one transaction under a row lock so
concurrent callers take turns. Each report calls it first, so a report always includes
every change committed before it started; the integration worker also calls it in the
background so that cost is rarely paid by a request. No write path has to know the
table exists, and a new write path cannot forget it.

**Layout.** The table has generic typed slots — text ``t1..t6``, numbers ``n1..n4``,
instants ``e1..e3`` (epoch seconds) — and :data:`LAYOUT` says, per collection, which
field goes in which slot and as what (see the kinds in :mod:`.sql`). Changing the
layout changes :data:`LAYOUT_ID`; the next catch-up then rebuilds the table from
version 0.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, delete, select, text, tuple_, update

from ..models import Record
from ..repository.state import read_counter
from .kinds import DAY, DAYNUM, EPOCH, FLAG, NUMBER, TEXT, Kind
from .models import ReportFact, ReportState

records_t = cast(Table, Record.__table__)
facts_t = cast(Table, ReportFact.__table__)
state_t = cast(Table, ReportState.__table__)

TEXT_SLOTS = tuple(f"t{i}" for i in range(1, 7))
NUMBER_SLOTS = tuple(f"n{i}" for i in range(1, 5))
EPOCH_SLOTS = tuple(f"e{i}" for i in range(1, 4))
BATCH = 2000
#: After this many changed facts, PostgreSQL's statistics of the table are refreshed.
ANALYZE_AFTER = 5000

#: Per collection, the (field, kind) pairs reports read, in slot order per kind.
_FIELDS: Mapping[str, tuple[tuple[str, Kind], ...]] = {
    "customers": (("status", TEXT), ("tier", TEXT), ("source", TEXT), ("industry", TEXT),
                  ("name", TEXT), ("next_follow_up", DAY)),
    "leads": (("source", TEXT), ("status", TEXT), ("converted_customer_id", TEXT),
              ("campaign_id", TEXT), ("converted_at", EPOCH)),
    "pipeline_stages": (("name", TEXT), ("name_zh", TEXT), ("position", NUMBER),
                        ("probability", NUMBER), ("is_won", FLAG), ("is_lost", FLAG)),
    "opportunities": (("stage_id", TEXT), ("status", TEXT), ("product_id", TEXT),
                      ("campaign_id", TEXT), ("closed_at", DAY), ("amount", NUMBER),
                      ("probability", NUMBER), ("closed_at", EPOCH)),
    "stage_changes": (("opportunity_id", TEXT), ("from_stage_id", TEXT), ("to_stage_id", TEXT),
                      ("changed_at", EPOCH)),
    "activities": (("author_id", TEXT), ("occurred_at", DAY), ("type", TEXT)),
    "tasks": (("title", TEXT), ("status", TEXT), ("due_at", TEXT), ("due_at", EPOCH)),
    "contracts": (("number", TEXT), ("title", TEXT), ("status", TEXT), ("ends_on", TEXT),
                  ("amount", NUMBER), ("remind_days_before", NUMBER), ("ends_on", DAYNUM)),
    "products": (("name", TEXT), ("sku", TEXT), ("category", TEXT)),
    "quotes": (("kind", TEXT), ("status", TEXT), ("ordered_at", DAY)),
    "quote_lines": (("quote_id", TEXT), ("product_id", TEXT), ("quantity", NUMBER),
                    ("unit_price", NUMBER), ("discount", NUMBER), ("line_total", NUMBER)),
    "campaigns": (("name", TEXT), ("channel", TEXT), ("status", TEXT), ("budget", NUMBER),
                  ("cost", NUMBER)),
    "campaign_members": (("campaign_id", TEXT), ("customer_id", TEXT), ("lead_id", TEXT),
                         ("status", TEXT), ("revenue", NUMBER)),
    "tickets": (("status", TEXT), ("priority", TEXT), ("assignee_id", TEXT),
                ("satisfaction", NUMBER), ("opened_at", EPOCH), ("resolved_at", EPOCH),
                ("sla_due_at", EPOCH)),
    "satisfaction_responses": (("score", NUMBER),),
    "sales_targets": (("period_start", TEXT), ("period_end", TEXT), ("product_id", TEXT),
                      ("amount", NUMBER)),
}  # fmt: skip

_SLOTS_OF = {
    TEXT: TEXT_SLOTS,
    DAY: TEXT_SLOTS,
    NUMBER: NUMBER_SLOTS,
    FLAG: NUMBER_SLOTS,
    DAYNUM: NUMBER_SLOTS,
    EPOCH: EPOCH_SLOTS,
}


def _assign() -> dict[str, dict[tuple[str, Kind], str]]:
    layout: dict[str, dict[tuple[str, Kind], str]] = {}
    for collection, fields in _FIELDS.items():
        used: dict[tuple[str, ...], int] = {}
        slots: dict[tuple[str, Kind], str] = {}
        for name, kind in fields:
            family = _SLOTS_OF[kind]
            n = used.get(family, 0)
            if n >= len(family):
                raise ValueError(f"report_facts: {collection} needs more {family[0][0]} slots")
            slots[(name, kind)] = family[n]
            used[family] = n + 1
        layout[collection] = slots
    return layout


#: collection → (field, kind) → slot column.
LAYOUT = _assign()
LAYOUT_ID = hashlib.sha256(
    json.dumps(
        {c: sorted(f"{k}:{v.value}={s}" for (k, v), s in m.items()) for c, m in LAYOUT.items()},
        sort_keys=True,
    ).encode()
).hexdigest()[:16]


def slot(collection: str, field: str, kind: Kind) -> str:
    """The column holding ``field`` of ``collection`` as ``kind``."""
    try:
        return LAYOUT[collection][(field, kind)]
    except KeyError:
        raise KeyError(
            f"report_facts has no {collection}.{field} as {kind.value}: add it to _FIELDS"
        ) from None


# ---- converting one field --------------------------------------------------------------


def _epoch(value: Any) -> int | None:
    if not isinstance(value, str) or len(value) < 16 or value[10] not in "T ":
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _daynum(value: Any) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        return (date.fromisoformat(value[:10]) - date(1970, 1, 1)).days
    except ValueError:
        return None


def convert(kind: Kind, value: Any) -> Any:
    if value is None:
        return None
    if kind is TEXT:
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if kind is DAY:
        return value[:10] if isinstance(value, str) else None
    if kind is NUMBER:
        return _number(value)
    if kind is FLAG:
        return 1 if value is True else 0 if value is False else None
    if kind is DAYNUM:
        return _daynum(value)
    return _epoch(value)


# ---- catching up -----------------------------------------------------------------------


@dataclass(slots=True)
class CatchUp:
    """What one :func:`catch_up` did."""

    cursor: int
    upserted: int = 0
    removed: int = 0
    rebuilt: bool = False


#: The columns of ``report_facts`` in the order :func:`_fact` produces them.
COLUMNS = (
    ("collection", "text"),
    ("record_id", "text"),
    ("owner_id", "text"),
    ("customer_id", "text"),
    ("created_at_ms", "bigint"),
    ("version", "bigint"),
    *((name, "text") for name in TEXT_SLOTS),
    *((name, "double precision") for name in NUMBER_SLOTS),
    *((name, "bigint") for name in EPOCH_SLOTS),
)
_POSITION = {name: i for i, (name, _) in enumerate(COLUMNS)}
#: Per collection: (field, kind, position in the row tuple).
_PLAN = {
    collection: [(name, kind, _POSITION[column]) for (name, kind), column in slots.items()]
    for collection, slots in LAYOUT.items()
}


def _fact(row: Any) -> tuple[Any, ...]:
    fields = json.loads(row.data) if row.data else {}
    fact: list[Any] = [row.collection, row.record_id, row.owner_id, row.customer_id,
                       row.created_at_ms, row.version]  # fmt: skip
    fact.extend([None] * (len(COLUMNS) - 6))
    for name, kind, position in _PLAN[row.collection]:
        value = fields.get(name)
        if value is not None:
            fact[position] = convert(kind, value)
    return tuple(fact)


def _upsert(conn: Connection, facts: list[tuple[Any, ...]]) -> None:
    """Insert or replace many facts in one statement: on PostgreSQL the batch travels as
    one JSON array unpacked by ``json_array_elements`` (as pushes write records), on
    SQLite through ``executemany`` (a C loop)."""
    if not facts:
        return
    names = ", ".join(name for name, _ in COLUMNS)
    updates = ", ".join(
        f"{name} = excluded.{name}"
        for name, _ in COLUMNS
        if name not in ("collection", "record_id")
    )
    conflict = f"ON CONFLICT (collection, record_id) DO UPDATE SET {updates}"
    if conn.dialect.name == "postgresql":
        picks = ", ".join(f"(e->>{i})::{sql_type}" for i, (_, sql_type) in enumerate(COLUMNS))
        payload = json.dumps(facts, ensure_ascii=False, separators=(",", ":"))
        conn.exec_driver_sql(
            f"INSERT INTO report_facts ({names}) SELECT {picks} "
            f"FROM json_array_elements(%s::json) AS e {conflict}",
            (payload,),
        )
        return
    marks = ", ".join("?" * len(COLUMNS))
    conn.exec_driver_sql(f"INSERT INTO report_facts ({names}) VALUES ({marks}) {conflict}", facts)


def _remove(conn: Connection, keys: Iterable[tuple[str, str]]) -> int:
    wanted = list(keys)
    removed = 0
    for i in range(0, len(wanted), 500):
        chunk = wanted[i : i + 500]
        result = conn.execute(
            delete(facts_t).where(tuple_(facts_t.c.collection, facts_t.c.record_id).in_(chunk))
        )
        removed += result.rowcount or 0
    return removed


def _lock_state(conn: Connection) -> tuple[int, str | None]:
    """Lock the one state row (creating it on first use); (cursor, layout)."""
    if conn.dialect.name == "postgresql":
        conn.execute(
            text(
                "INSERT INTO report_state (id, cursor, layout) VALUES (1, 0, NULL) "
                "ON CONFLICT (id) DO NOTHING"
            )
        )
        row = conn.execute(
            text("SELECT cursor, layout FROM report_state WHERE id = 1 FOR UPDATE")
        ).one()
    else:
        conn.execute(
            text("INSERT OR IGNORE INTO report_state (id, cursor, layout) VALUES (1, 0, NULL)")
        )
        conn.execute(text("UPDATE report_state SET cursor = cursor WHERE id = 1"))
        row = conn.execute(text("SELECT cursor, layout FROM report_state WHERE id = 1")).one()
    return int(row[0]), row[1]


def catch_up(engine: Engine, *, limit: int | None = None) -> CatchUp:
    """Bring ``report_facts`` up to every committed change (or ``limit`` changes)."""
    with engine.connect() as conn:
        # The common case — nothing changed since the last catch-up — costs one read,
        # no lock and no commit.
        row = conn.execute(
            text("SELECT s.cursor, s.layout FROM report_state s WHERE s.id = 1")
        ).one_or_none()
        top = read_counter(conn).counter
        conn.rollback()
    if row is not None and row[1] == LAYOUT_ID and int(row[0]) >= top:
        return CatchUp(int(row[0]))
    with engine.begin() as conn:
        cursor, layout = _lock_state(conn)
        outcome = CatchUp(cursor)
        if layout != LAYOUT_ID:
            conn.execute(delete(facts_t))
            cursor, outcome.rebuilt = 0, True
        high = read_counter(conn).counter
        while cursor < high and (limit is None or outcome.upserted + outcome.removed < limit):
            rows = conn.execute(
                select(
                    records_t.c.collection,
                    records_t.c.record_id,
                    records_t.c.owner_id,
                    records_t.c.customer_id,
                    records_t.c.created_at_ms,
                    records_t.c.version,
                    records_t.c.deleted,
                    records_t.c.data,
                )
                .where(records_t.c.version > cursor, records_t.c.version <= high)
                .order_by(records_t.c.version)
                .limit(BATCH)
            ).all()
            if not rows:
                cursor = high
                break
            live = [_fact(r) for r in rows if not r.deleted and r.collection in LAYOUT]
            gone = {
                (r.collection, r.record_id) for r in rows if r.deleted and r.collection in LAYOUT
            }
            _upsert(conn, live)
            outcome.removed += _remove(conn, gone)
            outcome.upserted += len(live)
            cursor = int(rows[-1].version)
        conn.execute(
            update(state_t).where(state_t.c.id == 1).values(cursor=cursor, layout=LAYOUT_ID)
        )
        if conn.dialect.name == "postgresql" and outcome.upserted + outcome.removed > ANALYZE_AFTER:
            # Fresh statistics, or the planner misjudges the next reports' scans.
            conn.execute(text("ANALYZE report_facts"))
        outcome.cursor = cursor
    return outcome
