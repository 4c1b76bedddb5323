"""CRM keys: normalised duplicate keys (``record_keys``), search text with a pinyin sort
key (``record_search``) and due reminders (``reminders``), backfilled from the records.

Revision ID: 0006_crm_keys
Revises: 0005_report_facts
Create Date: 2026-12-02 21:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_crm_keys"
down_revision: str | None = "0005_report_facts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "record_keys",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("collection", sa.String(length=64), nullable=False),
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_record_keys_lookup", "record_keys", ["collection", "key"])
    op.create_index("ix_record_keys_record", "record_keys", ["collection", "record_id"])
    op.create_table(
        "record_search",
        sa.Column("collection", sa.String(length=64), nullable=False),
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("sort_key", sa.String(length=400), nullable=False),
        sa.PrimaryKeyConstraint("collection", "record_id"),
    )
    op.create_index("ix_record_search_sort", "record_search", ["collection", "sort_key"])
    op.create_table(
        "reminders",
        sa.Column("collection", sa.String(length=64), nullable=False),
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("due_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("until_ms", sa.BigInteger(), nullable=True),
        sa.Column("user_id", sa.String(length=64), nullable=True),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.PrimaryKeyConstraint("collection", "record_id"),
    )
    op.create_index("ix_reminders_due", "reminders", ["due_at_ms"])
    from server.crm.backfill import reindex_all

    reindex_all(op.get_bind())


def downgrade() -> None:
    op.drop_index("ix_reminders_due", table_name="reminders")
    op.drop_table("reminders")
    op.drop_index("ix_record_search_sort", table_name="record_search")
    op.drop_table("record_search")
    op.drop_index("ix_record_keys_record", table_name="record_keys")
    op.drop_index("ix_record_keys_lookup", table_name="record_keys")
    op.drop_table("record_keys")
