"""Writing a push batch: records, idempotency results and audit rows, each table in one
statement straight to the driver (SQLAlchemy's per-row parameter processing would cost
more than the SQL)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii as _quote
from typing import Any

from sqlalchemy import Connection

from sync_protocol import Mutation, MutationResult

from .rows import RowState


@dataclass(frozen=True, slots=True)
class StoredResult:
    """A mutation's first answer and the digest of what was sent then."""

    result: str
    digest: str | None


class Raced(Exception):
    """A write of the batch met a row another transaction stored since the batch read
    (a retried mutation id, a record created or changed concurrently): the batch must
    be rolled back and applied again, which then sees that row."""


#: PostgreSQL: a list of keys as one statement parameter — the rows ``k(key)`` of a JSON
#: array (:func:`key_list`). Not ``unnest(%s::text[])``: psycopg builds a text array's
#: literal in Python, escaping each element (~11 ms of server CPU for a push's 4,000
#: duplicate keys); ``json.dumps`` does it in C (~0.5 ms) and PostgreSQL unpacks it as
#: fast (``tests/server/test_push_sql_pg.py``).
KEYS = "jsonb_array_elements_text(%s::jsonb) AS k(key)"


def key_list(values: Sequence[str]) -> str:
    """The parameter of :data:`KEYS` for ``values``."""
    return json.dumps(list(values), ensure_ascii=False, separators=(",", ":"))


def lookup(
    conn: Connection,
    sql: str,
    column: str,
    values: Sequence[str],
    params: Sequence[Any] = (),
) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` — ``{0}`` is one placeholder (``params`` in order), ``{1}`` the
    condition "``column`` is one of ``values``".

    **PostgreSQL: plan-stable.** ``column IN (…)`` and ``column = ANY(array)`` are the
    same to the planner: on a table without fresh statistics (bulk-loaded, autovacuum
    off) it estimates ``collection = 'customers'`` as selective, scans the whole
    collection through the index prefix and filters 1,000 ids out of it (~120 ms at
    148k rows; ``tests/server/test_push_statements.py`` shows the plan). Here each id is
    looked up on its own: the keys (:data:`KEYS`) joined ``LATERAL`` to the statement with
    ``column = k.key`` behind ``OFFSET 0`` (which keeps the planner from flattening the
    join back into one scan). Every lookup is then an equality on the full unique key:
    an index scan whatever the statistics say, and one statement text for any batch size.

    SQLite gets ``IN (?, …)``, which it always answers from the index."""
    if conn.dialect.name == "postgresql":
        inner = sql.format("%s", f"{column} = k.key")
        statement = f"SELECT q.* FROM {KEYS} CROSS JOIN LATERAL ({inner} OFFSET 0) AS q"
        args: tuple[Any, ...] = (key_list(values), *params)
    else:
        statement = sql.format("?", f"{column} IN ({', '.join('?' * len(values))})")
        args = (*params, *values)
    return [tuple(r) for r in conn.exec_driver_sql(statement, args)]


def delete_by_key(conn: Connection, table: str, collection: str, record_ids: Sequence[str]) -> None:
    """Delete the rows of ``table`` keyed ``(collection, record_id)`` for ``record_ids``
    (derived tables: duplicate keys, search text, reminders).

    SQLite: ``collection = ? AND record_id IN (…)`` — an index search (a row-value
    ``(collection, record_id) IN (…)`` is planned as a full scan). PostgreSQL: the rows
    are found key by key as in :func:`lookup` and deleted by ``ctid`` — plan-stable."""
    if not record_ids:
        return
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(
            f"DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT q.ctid FROM "
            f"{KEYS} CROSS JOIN LATERAL (SELECT ctid FROM "
            f"{table} WHERE collection = %s AND record_id = k.key OFFSET 0) AS q))",
            (key_list(record_ids), collection),
        )
        return
    marks = ", ".join("?" * len(record_ids))
    conn.exec_driver_sql(
        f"DELETE FROM {table} WHERE collection = ? AND record_id IN ({marks})",
        (collection, *record_ids),
    )


def write_batch(
    conn: Connection,
    written: Sequence[RowState],
    results: Sequence[tuple[Mutation, MutationResult, StoredResult]],
    *,
    user_id: str,
    device_id: str | None,
    now_ms: int,
) -> None:
    """Store each new mutation's result (the JSON answered to retries), insert or update
    ``written`` rows and write the audit rows — one statement per table.

    Raises :class:`Raced` (nothing to keep: the caller rolls back) when

    * a mutation id is already stored for this device: the idempotency check *is* this
      ``INSERT … ON CONFLICT DO NOTHING`` (a fresh batch — the common case — reads
      nothing before it; a retry is detected here and the batch applied again with the
      stored results loaded);
    * a record the batch creates was created meanwhile by another transaction
      (``ON CONFLICT (collection, record_id) DO NOTHING``);
    * a record the batch updates changed since the batch read it (``WHERE version =``
      the version read): a concurrent push on PostgreSQL, which does not serialise
      pushes (:mod:`.state`).

    Rows are written in key order, so two batches lock shared rows in the same order."""
    uid, now, device = user_id, now_ms, device_id
    applied = sorted(
        (uid, device or "", m.id, stored.digest, stored.result, now) for m, _, stored in results
    )
    if _insert(conn, "applied_mutations", _APPLIED_COLUMNS, applied, _APPLIED_KEY) != len(applied):
        raise Raced("a mutation id of this batch is already stored")
    inserts: list[tuple[Any, ...]] = []
    updates: list[tuple[Any, ...]] = []
    for row in sorted(written, key=lambda r: (r.pk or 0, r.collection, r.record_id)):
        data, clocks = row.encoded()
        owner, customer, version, deleted = (
            row.owner_id,
            row.customer_id,
            row.version,
            row.record.deleted,
        )
        if row.pk is None:
            inserts.append(
                (row.collection, row.record_id, owner, customer, version, deleted, data,
                 clocks, row.created_at_ms, now, uid)
            )  # fmt: skip
        else:
            updates.append(
                (owner, customer, version, deleted, data, clocks, now, uid, row.pk,
                 row.stored_version)
            )  # fmt: skip
    if _update_records(conn, updates) != len(updates):
        raise Raced("a record of this batch changed since it was read")
    if _insert(conn, "records", _RECORD_COLUMNS, inserts, _RECORD_KEY) != len(inserts):
        raise Raced("a record this batch creates was created meanwhile")
    _insert(
        conn,
        "audit_log",
        _AUDIT_COLUMNS,
        [
            (
                now,
                uid,
                device,
                f"mutation.{r.status.value}",
                f"{m.collection}/{m.record_id}",
                audit_details(m.id, m.op, r.version, r.error.code.value if r.error else None),
            )
            for m, r, _ in results
        ],
    )


def audit_details(mutation_id: str, op: str, version: int | None, error: str | None) -> str:
    """``json.dumps({"mutation_id": …, "op": …, "version": …, "error": …})``, the same
    text put together directly (one per pushed mutation)."""
    v = "null" if version is None else str(int(version))
    e = "null" if error is None else _quote(error)
    return f'{{"mutation_id": {_quote(mutation_id)}, "op": {_quote(op)}, "version": {v}, "error": {e}}}'


_UPDATE_SET = (
    "owner_id = {0}, customer_id = {0}, version = {0}, deleted = {0}, data = {0}, "
    "clocks = {0}, updated_at_ms = {0}, updated_by = {0}"
)


def _update_records(conn: Connection, rows: list[tuple[Any, ...]]) -> int:
    """Update rows by ``id`` if still at the version read; the number updated."""
    if not rows:
        return 0
    if conn.dialect.name != "postgresql":
        sql = f"UPDATE records SET {_UPDATE_SET} WHERE id = {{0}} AND version = {{0}}"
        return int(conn.exec_driver_sql(sql.format("?"), rows).rowcount)
    types = ("text", "text", "bigint", "boolean", "text", "text", "bigint", "text")
    names = (
        "owner_id", "customer_id", "version", "deleted", "data", "clocks", "updated_at_ms",
        "updated_by",
    )  # fmt: skip
    sets = ", ".join(
        f"{n} = (e->>{i})::{t}" for i, (n, t) in enumerate(zip(names, types, strict=True))
    )
    payload = json.dumps(rows, ensure_ascii=False, separators=(",", ":"))
    result = conn.exec_driver_sql(
        f"UPDATE records AS r SET {sets} FROM jsonb_array_elements(%s::jsonb) AS e "
        "WHERE r.id = (e->>8)::bigint AND r.version = (e->>9)::bigint",
        (payload,),
    )
    return int(result.rowcount)


def _executemany(conn: Connection, sql: str, width: int, rows: list[tuple[Any, ...]]) -> int:
    """``sql`` with ``{}`` (a VALUES list of ``width``); the number of rows changed."""
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    statement = sql.format(", ".join([mark] * width))
    return int(conn.exec_driver_sql(statement, rows).rowcount)


def insert_rows(
    conn: Connection,
    table: str,
    columns: Sequence[tuple[str, str]],
    rows: list[tuple[Any, ...]],
    *,
    skip_taken: bool = False,
) -> int:
    """Insert ``rows`` (tuples in the order of ``columns``: ``(name, PostgreSQL type)``)
    into ``table`` in one statement straight to the driver; the number inserted. For the
    derived tables a push keeps (reminders, duplicate keys …). ``skip_taken``: a row
    whose unique key is taken is skipped (``ON CONFLICT DO NOTHING``, any constraint)."""
    return _insert(conn, table, columns, rows, "" if skip_taken else None)


def _insert(
    conn: Connection,
    table: str,
    columns: Sequence[tuple[str, str]],
    rows: list[tuple[Any, ...]],
    unique: str | None = None,
) -> int:
    """Insert many rows (skipping any whose ``unique`` key is taken; ``""``: any unique
    key); the number inserted. SQLite's ``executemany`` loops in C. On PostgreSQL the batch travels as one
    JSON array parameter unpacked by ``jsonb_array_elements`` — one statement, encoded and
    parsed in C on both sides (a pipelined ``executemany`` pays a round of Python per
    row, and psycopg's text arrays escape every element in Python). ``jsonb``, not
    ``json``: ``e->>i`` on a ``json`` value lexes the element's text again up to column
    ``i`` — once per column, through every escaped ``data``/``clocks`` string before it
    — which made the records INSERT cost ~2.5× the PostgreSQL CPU; ``jsonb`` parses the
    array once and ``->>`` is a lookup (``tests/server/test_push_sql_pg.py``)."""
    if not rows:
        return 0
    names = ", ".join(name for name, _ in columns)
    skip = (
        ""
        if unique is None
        else f" ON CONFLICT ({unique}) DO NOTHING"
        if unique
        else " ON CONFLICT DO NOTHING"
    )
    if conn.dialect.name != "postgresql":
        sql = f"INSERT INTO {table} ({names}) VALUES ({{}}){skip}"
        return _executemany(conn, sql, len(columns), rows)
    picks = ", ".join(f"(e->>{i})::{sql_type}" for i, (_, sql_type) in enumerate(columns))
    payload = json.dumps(rows, ensure_ascii=False, separators=(",", ":"))
    result = conn.exec_driver_sql(
        f"INSERT INTO {table} ({names}) SELECT {picks} FROM jsonb_array_elements(%s::jsonb) AS e"
        + skip,
        (payload,),
    )
    return int(result.rowcount)


_APPLIED_KEY = "user_id, device_id, mutation_id"
_RECORD_KEY = "collection, record_id"
_RECORD_COLUMNS = (
    ("collection", "text"),
    ("record_id", "text"),
    ("owner_id", "text"),
    ("customer_id", "text"),
    ("version", "bigint"),
    ("deleted", "boolean"),
    ("data", "text"),
    ("clocks", "text"),
    ("created_at_ms", "bigint"),
    ("updated_at_ms", "bigint"),
    ("updated_by", "text"),
)
_APPLIED_COLUMNS = (
    ("user_id", "text"),
    ("device_id", "text"),
    ("mutation_id", "text"),
    ("content_hash", "text"),
    ("result", "text"),
    ("created_at_ms", "bigint"),
)
_AUDIT_COLUMNS = (
    ("at_ms", "bigint"),
    ("user_id", "text"),
    ("device_id", "text"),
    ("action", "text"),
    ("target", "text"),
    ("details", "text"),
)
