"""Writing a push batch: records, idempotency results and audit rows, each table in one
statement straight to the driver (SQLAlchemy's per-row parameter processing would cost
more than the SQL)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from sync_protocol import Mutation, MutationResult

from .rows import RowState


@dataclass(frozen=True, slots=True)
class StoredResult:
    """A mutation's first answer and the digest of what was sent then."""

    result: str
    digest: str | None


def write_batch(
    conn: Connection,
    written: Sequence[RowState],
    results: Sequence[tuple[Mutation, MutationResult, StoredResult]],
    *,
    user_id: str,
    device_id: str | None,
    now_ms: int,
) -> None:
    """Insert or update ``written`` rows; store each new mutation's result (the JSON
    answered to retries) and its audit row."""
    uid, now, device = user_id, now_ms, device_id
    inserts: list[tuple[Any, ...]] = []
    updates: list[tuple[Any, ...]] = []
    for row in written:
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
            updates.append((owner, customer, version, deleted, data, clocks, now, uid, row.pk))
    _insert(conn, "records", _RECORD_COLUMNS, inserts)
    _executemany(
        conn,
        "UPDATE records SET owner_id = {0}, customer_id = {0}, version = {0}, deleted = {0}, "
        "data = {0}, clocks = {0}, updated_at_ms = {0}, updated_by = {0} WHERE id = {0}",
        0,
        updates,
    )
    _insert(
        conn,
        "applied_mutations",
        _APPLIED_COLUMNS,
        [(uid, device or "", m.id, stored.digest, stored.result, now) for m, _, stored in results],
    )
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
                json.dumps(
                    {
                        "mutation_id": m.id,
                        "op": m.op,
                        "version": r.version,
                        "error": r.error.code.value if r.error else None,
                    }
                ),
            )
            for m, r, _ in results
        ],
    )


def _executemany(conn: Connection, sql: str, width: int, rows: list[tuple[Any, ...]]) -> None:
    """``sql`` with ``{}`` (a VALUES list of ``width``) or ``{0}`` (one placeholder)."""
    if not rows:
        return
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    statement = sql.format(", ".join([mark] * width)) if width else sql.format(mark)
    conn.exec_driver_sql(statement, rows)


def _insert(
    conn: Connection, table: str, columns: Sequence[tuple[str, str]], rows: list[tuple[Any, ...]]
) -> None:
    """Insert many rows. SQLite's ``executemany`` loops in C. On PostgreSQL the batch
    travels as one JSON array parameter unpacked by ``json_array_elements`` — one
    statement, encoded and parsed in C on both sides (a pipelined ``executemany`` pays a
    round of Python per row, and psycopg's text arrays escape every element in Python)."""
    if not rows:
        return
    names = ", ".join(name for name, _ in columns)
    if conn.dialect.name != "postgresql":
        _executemany(conn, f"INSERT INTO {table} ({names}) VALUES ({{}})", len(columns), rows)
        return
    picks = ", ".join(f"(e->>{i})::{sql_type}" for i, (_, sql_type) in enumerate(columns))
    payload = json.dumps(rows, ensure_ascii=False, separators=(",", ":"))
    conn.exec_driver_sql(
        f"INSERT INTO {table} ({names}) SELECT {picks} FROM json_array_elements(%s::json) AS e",
        (payload,),
    )


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
