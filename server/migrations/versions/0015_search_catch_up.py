"""Search indexing leaves the push: ``record_search`` is caught up from the change
sequence, like ``report_facts`` (issue 17; the scheme is in :mod:`server.crm.indexing`).

* ``record_search.version`` — the ``records.version`` an entry was made from. Existing
  entries get 0: they are true for their record as long as its version is at most the
  cursor below, and a record changed since has a higher version, so its entry differs
  and is redone;
* ``search_state`` — one row, ``cursor``: every record change with a version up to it
  is in ``record_search``. Set here to the highest version visible now — until this
  migration every write path indexed in its own transaction, so the table is true up
  to there.

Revision ID: 0015_search_catch_up
Revises: 0014_version_sequence
Create Date: 2026-12-03 09:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_search_catch_up"
down_revision: str | None = "0014_version_sequence"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "record_search",
        sa.Column("version", sa.BigInteger(), nullable=False, server_default="0"),
    )
    op.create_table(
        "search_state",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("cursor", sa.BigInteger(), nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        top = "fieldsync_visible_version()"
    else:
        top = "(SELECT counter FROM sync_state WHERE id = 1)"
    op.execute(f"INSERT INTO search_state (id, cursor) VALUES (1, coalesce({top}, 0))")


def downgrade() -> None:
    op.drop_table("search_state")
    with op.batch_alter_table("record_search") as batch:
        batch.drop_column("version")
