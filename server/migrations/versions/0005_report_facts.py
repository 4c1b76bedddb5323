"""The reporting table: typed copies of the fields reports read (``report_facts``) and
the version up to which it is true (``report_state``). Filled from the change sequence
by ``server.reports.facts.catch_up`` — the first catch-up after this migration indexes
every existing record.

Revision ID: 0005_report_facts
Revises: 0004_hardening
Create Date: 2026-12-02 21:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_report_facts"
down_revision: str | None = "0004_hardening"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "report_facts",
        sa.Column("collection", sa.String(length=64), nullable=False),
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.Column("owner_id", sa.String(length=64), nullable=True),
        sa.Column("customer_id", sa.String(length=64), nullable=True),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("version", sa.BigInteger(), nullable=False),
        *(sa.Column(f"t{i}", sa.Text(), nullable=True) for i in range(1, 7)),
        *(sa.Column(f"n{i}", sa.Double(), nullable=True) for i in range(1, 5)),
        *(sa.Column(f"e{i}", sa.BigInteger(), nullable=True) for i in range(1, 4)),
        sa.PrimaryKeyConstraint("collection", "record_id"),
    )
    op.create_index("ix_report_facts_collection_owner", "report_facts", ["collection", "owner_id"])
    op.create_table(
        "report_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cursor", sa.BigInteger(), nullable=False),
        sa.Column("layout", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("report_state")
    op.drop_index("ix_report_facts_collection_owner", table_name="report_facts")
    op.drop_table("report_facts")
