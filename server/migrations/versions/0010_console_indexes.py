"""PostgreSQL: partial indexes on the reporting table for the console's dashboard.

* activities by day (``report_facts.t2`` is an activity's ``occurred_at`` day), carrying
  author (``t1``), type (``t3``) and owner: the week's visits and calls per rep and the
  month's activity count per rep read one week's or month's rows instead of scanning
  every activity (200,000 in ``bench/console_bench.py``);
* customers by follow-up day (``t6`` is ``next_follow_up``), carrying the owner: the
  overdue follow-up count per rep.

Partial (one collection each), so they hold only those rows' short day strings. The
slot numbers are :mod:`server.reports.facts`'s layout; if that layout moves a field, the
index stays correct and merely stops helping. SQLite: nothing to do.

Revision ID: 0010_console_indexes
Revises: 0009_search_trigram
Create Date: 2026-12-03 05:05:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010_console_indexes"
down_revision: str | None = "0009_search_trigram"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_report_facts_activity_day ON report_facts (t2) "
        "INCLUDE (t1, t3, owner_id) WHERE collection = 'activities'"
    )
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_report_facts_customer_follow_up ON report_facts (t6) "
        "INCLUDE (owner_id) WHERE collection = 'customers'"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_report_facts_customer_follow_up")
        op.execute("DROP INDEX IF EXISTS ix_report_facts_activity_day")
