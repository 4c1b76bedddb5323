"""Grants: a ticket assigned to an agent of another team reaches the agent's phones.

``record_grants(user_id, collection, record_id)`` — a record a user sees although its
owner is out of their sight (:data:`server.scope.GRANTING_FIELDS`); kept by the CRM
flush (:mod:`server.crm.grants`), read by pull as one more stream. Backfilled here from
the stored tickets.

Revision ID: 0013_record_grants
Revises: 0012_auth_state
Create Date: 2026-12-03 07:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_record_grants"
down_revision: str | None = "0012_auth_state"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "record_grants",
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("collection", sa.String(length=64), nullable=False),
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "collection", "record_id"),
    )
    op.create_index("ix_record_grants_record", "record_grants", ["collection", "record_id"])
    from server.crm.grants import rebuild_grants

    rebuild_grants(op.get_bind())


def downgrade() -> None:
    op.drop_index("ix_record_grants_record", table_name="record_grants")
    op.drop_table("record_grants")
