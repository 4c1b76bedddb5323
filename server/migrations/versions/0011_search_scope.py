"""Server search without touching ``records``: the owner beside the search text, and
(PostgreSQL) an index that serves one- and two-character searches.

* ``record_search.owner_id`` — a copy of ``records.owner_id`` (kept by every write path:
  the push flush re-indexes what it wrote, a reassignment moves it — see
  :mod:`server.crm.indexing`), so a manager's or a rep's search is one statement over
  the narrow search table instead of a join with ``records``; backfilled here. Index
  ``(collection, owner_id, sort_key)``: a scoped count and a scoped page in pinyin order.
* PostgreSQL: ``fieldsync_search_grams(collection, text)`` — every one- and
  two-character piece of the search text (not across the ``|`` between values),
  prefixed with the collection (``customers:张``, ``customers:zw``: a lookup reads one
  collection's rows only; repeats left in, GIN keeps each key once) — and a GIN index
  on it. The trigram index (``0009``) cannot serve a search shorter than three
  characters (``zw``, ``张伟``, ``张``); ``grams @> ARRAY['customers:zw']`` is exact for
  those, so they read the matching rows instead of scanning every customer's search
  text. One pass over the characters (``string_to_array`` with a NULL separator,
  ~40 µs for a customer's text): every write of a searched record pays it once. The
  index's pending list (new entries not yet merged, which every search reads through)
  is kept to 256 kB.

SQLite: the column and its index only (its search stays a scan of the narrow table).

Revision ID: 0011_search_scope
Revises: 0010_console_indexes
Create Date: 2026-12-03 06:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_search_scope"
down_revision: str | None = "0010_console_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Kept in step with :data:`server.manager.search.GRAMS_FUNCTION` (the query names it).
GRAMS = """
CREATE OR REPLACE FUNCTION fieldsync_search_grams(collection text, t text) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  c text[] := string_to_array(t, NULL);
  p text := collection || ':';
  grams text[] := '{}';
BEGIN
  FOR i IN 1 .. coalesce(array_length(c, 1), 0) LOOP
    IF c[i] <> '|' THEN
      grams := grams || (p || c[i]);
      IF c[i + 1] <> '|' THEN
        grams := grams || (p || c[i] || c[i + 1]);
      END IF;
    END IF;
  END LOOP;
  RETURN grams;
END
$$
"""


def upgrade() -> None:
    op.add_column("record_search", sa.Column("owner_id", sa.String(length=64), nullable=True))
    op.execute(
        "UPDATE record_search SET owner_id = (SELECT r.owner_id FROM records r "
        "WHERE r.collection = record_search.collection "
        "AND r.record_id = record_search.record_id)"
    )
    op.create_index(
        "ix_record_search_owner", "record_search", ["collection", "owner_id", "sort_key"]
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(GRAMS)
        op.execute(
            "CREATE INDEX ix_record_search_grams ON record_search "
            "USING gin (fieldsync_search_grams(collection, text)) "
            "WITH (gin_pending_list_limit = 256)"
        )
        op.execute("ANALYZE record_search")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_record_search_grams")
        op.execute("DROP FUNCTION IF EXISTS fieldsync_search_grams(text, text)")
    op.drop_index("ix_record_search_owner", table_name="record_search")
    with op.batch_alter_table("record_search") as batch:
        batch.drop_column("owner_id")
