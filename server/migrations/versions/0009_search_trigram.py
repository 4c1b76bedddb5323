"""PostgreSQL: a trigram index on the search text, so a search (``LIKE '%…%'``) of three
characters or more reads the matching rows instead of scanning every record's search
text (``docs/benchmarks.md``: server search at 50,000 customers). Needs the ``pg_trgm``
extension (trusted since PostgreSQL 13: the database owner may create it); without it
the search still works, by a scan. SQLite: nothing to do.

Revision ID: 0009_search_trigram
Revises: 0008_campaign_members_scope
Create Date: 2026-12-03 04:10:00
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_search_trigram"
down_revision: str | None = "0008_campaign_members_scope"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    try:
        with bind.begin_nested():
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except sa.exc.DBAPIError:
        log.warning("pg_trgm is not available: server search will scan (still correct)")
        return
    bind.execute(
        sa.text(
            "CREATE INDEX IF NOT EXISTS ix_record_search_trgm "
            "ON record_search USING gin (text gin_trgm_ops)"
        )
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_record_search_trgm")
