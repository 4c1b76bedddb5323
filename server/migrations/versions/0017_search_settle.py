"""PostgreSQL: a search entry is findable the moment the catch-up writes it, and its GIN
indexes are paid later (issue 17, "search after a burst"; :mod:`server.crm.indexing`).

* ``record_search.settled`` — whether the entry is in the two GIN indexes (trigrams,
  ``0009``; one- and two-character pieces, ``0011``). Both become partial indexes
  ``WHERE settled``: the catch-up writes entries with ``settled = false`` — the search
  text, the sort key, the owner copy and their B-trees, ~0.1 ms a customer instead of
  ~1 ms — and a background step (:func:`server.crm.indexing.settle_search`) sets it,
  which is when the GIN indexes take the entry. A search matches settled entries
  through the GIN indexes and the unsettled ones (few, or at most one burst's worth)
  with a ``LIKE`` over the partial index ``ix_record_search_unsettled``: the same answer
  either way (:func:`server.manager.search.matching_entries`). Existing entries are settled.
* ``fieldsync_search_grams`` returns each piece once (it returned every occurrence,
  ~3× as many: GIN sorted them all to drop the repeats): the same set of keys, so the
  same answers. Declared expensive (``COST 100000``; a call takes ~0.3 ms): with stale
  statistics after a burst the planner read a manager's ``张`` off the owner index and
  computed the grams of each of 40,000 rows (18 s); priced right, it reads the GIN
  index (40 ms).

SQLite: the column only (always true: SQLite has no GIN indexes to defer).

Revision ID: 0017_search_settle
Revises: 0016_duplicate_key_claims
Create Date: 2026-12-03 13:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_search_settle"
down_revision: str | None = "0016_duplicate_key_claims"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Kept in step with :data:`server.manager.search.GRAMS_FUNCTION`. One pass over the
#: characters (``string_to_array`` with a NULL separator), the two-character pieces by
#: zipping the array with itself shifted by one (``unnest`` of two arrays).
GRAMS = """
CREATE OR REPLACE FUNCTION fieldsync_search_grams(collection text, t text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE COST 100000 AS $$
SELECT array(
  SELECT DISTINCT collection || ':' || g FROM (
    SELECT a AS g FROM unnest(string_to_array(t, NULL)) AS a WHERE a <> '|'
    UNION ALL
    SELECT a || b FROM unnest(string_to_array(t, NULL), (string_to_array(t, NULL))[2:])
      AS u(a, b) WHERE a <> '|' AND b <> '|'
  ) AS pieces
)
$$
"""

#: The previous definition (``0011``), for the downgrade.
OLD_GRAMS = """
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


def _has_trigrams() -> bool:
    return bool(
        op.get_bind()
        .execute(sa.text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'"))
        .first()
    )


def upgrade() -> None:
    op.add_column(
        "record_search",
        sa.Column("settled", sa.Boolean(), nullable=False, server_default=sa.true()),
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_record_search_grams")
    op.execute(GRAMS)
    op.execute(
        "CREATE INDEX ix_record_search_grams ON record_search "
        "USING gin (fieldsync_search_grams(collection, text)) "
        "WITH (gin_pending_list_limit = 256) WHERE settled"
    )
    if _has_trigrams():
        op.execute("DROP INDEX IF EXISTS ix_record_search_trgm")
        op.execute(
            "CREATE INDEX ix_record_search_trgm ON record_search "
            "USING gin (text gin_trgm_ops) WHERE settled"
        )
    op.execute(
        "CREATE INDEX ix_record_search_unsettled ON record_search (collection, owner_id) "
        "WHERE NOT settled"
    )
    op.execute("ANALYZE record_search")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_record_search_unsettled")
        op.execute("DROP INDEX IF EXISTS ix_record_search_grams")
        op.execute(OLD_GRAMS)
        op.execute(
            "CREATE INDEX ix_record_search_grams ON record_search "
            "USING gin (fieldsync_search_grams(collection, text)) "
            "WITH (gin_pending_list_limit = 256)"
        )
        if _has_trigrams():
            op.execute("DROP INDEX IF EXISTS ix_record_search_trgm")
            op.execute(
                "CREATE INDEX ix_record_search_trgm ON record_search USING gin (text gin_trgm_ops)"
            )
    with op.batch_alter_table("record_search") as batch:
        batch.drop_column("settled")
