"""PostgreSQL: ``duplicate_key_claims`` — one row per duplicate key ever claimed (its
64-bit hash), which a push inserts or updates for every key it checks, so that two
concurrent pushes creating the same phone or e-mail take turns (the second waits on the
row until the first commits, then sees its keys). It replaces one advisory lock per key,
which filled PostgreSQL's shared lock table when two pushes of 1,000 customers ran at
once (:mod:`server.crm.duplicates`). SQLite: nothing (one writer at a time).

Revision ID: 0016_duplicate_key_claims
Revises: 0015_search_catch_up
Create Date: 2026-12-03 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0016_duplicate_key_claims"
down_revision: str | None = "0015_search_catch_up"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE TABLE duplicate_key_claims (h bigint PRIMARY KEY)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TABLE duplicate_key_claims")
