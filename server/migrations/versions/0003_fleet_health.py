"""Fleet health (issue 18): ``device_health``, one row per device — when it last pushed
and pulled, the checkpoint it was served, the last error the server answered it, and the
``DeviceStatus`` it last reported (see ``server/fleet/models.py``).

Revision ID: 0003_fleet_health
Revises: 0002_attachments
Create Date: 2026-11-24 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_fleet_health"
down_revision: str | None = "0002_attachments"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "device_health",
        sa.Column("device_id", sa.String(64), nullable=False),
        sa.Column("last_push_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("last_pull_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("checkpoint", sa.String(64), nullable=True),
        sa.Column("server_error_code", sa.String(64), nullable=True),
        sa.Column("server_error_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("server_error_endpoint", sa.String(128), nullable=True),
        sa.Column("server_error_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("status_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("pending_count", sa.BigInteger(), nullable=True),
        sa.Column("oldest_pending_age_s", sa.BigInteger(), nullable=True),
        sa.Column("dead_letters", sa.BigInteger(), nullable=True),
        sa.Column("open_conflicts", sa.BigInteger(), nullable=True),
        sa.Column("failed_attempts", sa.BigInteger(), nullable=True),
        sa.Column("device_error_code", sa.String(64), nullable=True),
        sa.Column("device_error_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("clock_offset_ms", sa.BigInteger(), nullable=True),
        sa.Column("schema_version", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("device_id"),
    )


def downgrade() -> None:
    op.drop_table("device_health")
