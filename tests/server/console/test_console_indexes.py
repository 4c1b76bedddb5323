"""The dashboard's partial indexes (migration ``0010_console_indexes``) name reporting
slots by number: they must still be the fields the dashboard filters on."""

from __future__ import annotations

import re
from pathlib import Path

from server.reports import facts
from server.reports.kinds import DAY, TEXT

MIGRATION = (
    Path(__file__).resolve().parents[3]
    / "server"
    / "migrations"
    / "versions"
    / "0010_console_indexes.py"
)


def test_dashboard_indexes_cover_the_slots_the_dashboard_reads() -> None:
    # The statements as one line each: the adjacent string literals joined.
    sql = re.sub(r'"\s*"', "", MIGRATION.read_text(encoding="utf-8"))
    day = facts.slot("activities", "occurred_at", DAY)
    author = facts.slot("activities", "author_id", TEXT)
    kind = facts.slot("activities", "type", TEXT)
    follow_up = facts.slot("customers", "next_follow_up", DAY)
    activities = f"({day}) INCLUDE ({author}, {kind}, owner_id) WHERE collection = 'activities'"
    customers = f"({follow_up}) INCLUDE (owner_id) WHERE collection = 'customers'"
    assert f"ON report_facts {activities}" in sql
    assert f"ON report_facts {customers}" in sql
