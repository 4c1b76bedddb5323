"""Hardening (issue 12): restore epoch, token generations, TOTP replay guard, the shared
login throttle, idempotency scoped per user and device with a content hash, and the
attachment proof-of-possession nonce.

* ``sync_state.epoch`` — changes on every restore; a checkpoint of another epoch is
  answered ``resync_required``. Existing databases start at epoch ``"0"``, which is
  the epoch of the old ``v1:<n>`` checkpoints, so installed devices keep syncing.
* ``users.token_generation`` / ``devices.token_generation`` — carried in access
  tokens; raising one revokes every token issued before, at once, on every instance.
* ``users.totp_last_step`` — the last TOTP time step accepted: a code works once.
* ``login_throttle`` — failed-login and per-address counters shared by every process.
* ``applied_mutations`` — rebuilt with the key ``(user_id, device_id, mutation_id)``
  and the SHA-256 of what the device sent (``content_hash``; NULL for older rows).
* ``attachments.proof_nonce`` — the per-attachment key of the possession proof.

Revision ID: 0004_hardening
Revises: 0003_fleet_health
Create Date: 2026-11-24 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_hardening"
down_revision: str | None = "0003_fleet_health"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sync_state") as batch:
        batch.add_column(sa.Column("epoch", sa.String(32), nullable=False, server_default="0"))
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("token_generation", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("totp_last_step", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("devices") as batch:
        batch.add_column(
            sa.Column("token_generation", sa.Integer(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("attachments") as batch:
        batch.add_column(sa.Column("proof_nonce", sa.String(64), nullable=True))
    op.create_table(
        "login_throttle",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("window_start_ms", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "applied_mutations_new",
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("device_id", sa.String(64), nullable=False),
        sa.Column("mutation_id", sa.String(64), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=True),
        sa.Column("result", sa.Text(), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "device_id", "mutation_id"),
    )
    op.execute(
        "INSERT INTO applied_mutations_new "
        "(user_id, device_id, mutation_id, content_hash, result, created_at_ms) "
        "SELECT user_id, COALESCE(device_id, ''), mutation_id, NULL, result, created_at_ms "
        "FROM applied_mutations"
    )
    op.drop_table("applied_mutations")
    op.rename_table("applied_mutations_new", "applied_mutations")


def downgrade() -> None:
    op.create_table(
        "applied_mutations_old",
        sa.Column("mutation_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("device_id", sa.String(64), nullable=True),
        sa.Column("result", sa.Text(), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("mutation_id"),
    )
    # Ids were unique per device only: keep the first row of each id.
    op.execute(
        "INSERT INTO applied_mutations_old (mutation_id, user_id, device_id, result, "
        "created_at_ms) SELECT mutation_id, min(user_id), NULLIF(min(device_id), ''), "
        "min(result), min(created_at_ms) FROM applied_mutations GROUP BY mutation_id"
    )
    op.drop_table("applied_mutations")
    op.rename_table("applied_mutations_old", "applied_mutations")
    op.drop_table("login_throttle")
    with op.batch_alter_table("attachments") as batch:
        batch.drop_column("proof_nonce")
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("token_generation")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("totp_last_step")
        batch.drop_column("token_generation")
    with op.batch_alter_table("sync_state") as batch:
        batch.drop_column("epoch")
