"""PostgreSQL: ``duplicate_key_claims`` becomes an UNLOGGED table (issue 17).

A claim row is a lock, not data: a push inserts or updates the row of every duplicate
key it checks so that a concurrent push of the same key waits for it
(:mod:`server.crm.duplicates`, migration 0016); what the rows hold never matters after
the transactions that took them ended. So they need not be written to the WAL: a push
of 1,000 new customers claims ~4,000 keys — ~12,000 WAL records, ~0.75 MB, about an
eighth of the push's WAL — and unlogged rows lock and wait exactly like logged ones
(the unique index works the same). After a crash PostgreSQL empties an unlogged table,
and a standby does not have its rows: both only forget claims that nobody holds any
more. SQLite: nothing (no such table).

Revision ID: 0018_unlogged_claims
Revises: 0017_search_settle
Create Date: 2026-12-03 13:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0018_unlogged_claims"
down_revision: str | None = "0017_search_settle"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE duplicate_key_claims SET UNLOGGED")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE duplicate_key_claims SET LOGGED")
