"""``record_keys`` becomes one B-tree keyed ``(collection, key, record_id)`` (issue 19).

Before: a row id, an index by ``(collection, key)`` (the duplicate check's lookup) and
one by ``(collection, record_id)`` (to delete a record's keys before writing its new
ones) — three B-trees to write for each of a customer's ~4 keys. Now the table *is* the
lookup's B-tree (on SQLite a ``WITHOUT ROWID`` table; on PostgreSQL the primary key),
and a record's keys are replaced by difference: the keys of its stored fields that its
new fields no longer give are deleted by their full key, the new ones inserted
(:func:`server.crm.indexing.index_keys`). Measured on a copy of a 100,000-customer
SQLite database: inserting a push's 4,000 keys ~13 -> ~7 ms of CPU (keys in ascending
order as the push bench writes them; ~30 -> ~15 ms for random keys).

The keys are copied as they are (each ``(collection, key, record_id)`` once: the old
table allowed a repeat, the new key does not).

Revision ID: 0019_record_keys_by_key
Revises: 0018_unlogged_claims
Create Date: 2026-12-03 16:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019_record_keys_by_key"
down_revision: str | None = "0018_unlogged_claims"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD = "record_keys_0018"


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.rename_table("record_keys", _OLD)
    if postgres:
        # Index names are the schema's: free the primary key's for the new table.
        op.execute(f"ALTER INDEX record_keys_pkey RENAME TO {_OLD}_pkey")
    op.create_table(
        "record_keys",
        sa.Column("collection", sa.String(length=64), nullable=False),
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.PrimaryKeyConstraint("collection", "key", "record_id", name="record_keys_pkey"),
        sqlite_with_rowid=False,
    )
    op.execute(
        "INSERT INTO record_keys (collection, key, record_id) "
        f"SELECT DISTINCT collection, key, record_id FROM {_OLD} ORDER BY 1, 2, 3"
    )
    # Its indexes go with it (and, on PostgreSQL, the id's sequence).
    op.drop_table(_OLD)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.rename_table("record_keys", _OLD)
    if postgres:
        op.execute(f"ALTER INDEX record_keys_pkey RENAME TO {_OLD}_pkey")
    op.create_table(
        "record_keys",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("collection", sa.String(length=64), nullable=False),
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute(
        "INSERT INTO record_keys (collection, record_id, key) "
        f"SELECT collection, record_id, key FROM {_OLD} ORDER BY collection, record_id, key"
    )
    op.drop_table(_OLD)
    op.create_index("ix_record_keys_lookup", "record_keys", ["collection", "key"])
    op.create_index("ix_record_keys_record", "record_keys", ["collection", "record_id"])
