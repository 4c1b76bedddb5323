"""PostgreSQL: versions from a sequence, writers marked by advisory locks — pushes no
longer serialise on the ``sync_state`` row (issue 17; the scheme and its argument are
in :mod:`server.repository.state`).

* ``fieldsync_versions`` — the sequence every version is taken from, started at the
  current ``sync_state.counter``;
* ``fieldsync_begin_write(exclusive)`` — the writer gate (advisory transaction lock
  ``-1``, shared or exclusive), then the transaction's mark: a shared advisory
  transaction lock keyed by the sequence's last value, read after the gate;
* ``fieldsync_visible_version()`` — the highest version a pull may serve: the
  sequence's last value, then the smallest mark held in this database, the lesser.

Marks are keys ``0 <= m < 2**48`` (``pg_locks.classid < 65536``); the gate ``-1`` and
the compaction lock (``server.maintenance.compaction.ADVISORY_KEY``) are outside that
range. SQLite: nothing (it keeps the locked counter row).

Revision ID: 0014_version_sequence
Revises: 0013_record_grants
Create Date: 2026-12-03 07:05:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0014_version_sequence"
down_revision: str | None = "0013_record_grants"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BEGIN_WRITE = """
CREATE FUNCTION fieldsync_begin_write(exclusive boolean) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    mark bigint;
BEGIN
    IF exclusive THEN
        PERFORM pg_advisory_xact_lock(-1);
    ELSE
        PERFORM pg_advisory_xact_lock_shared(-1);
    END IF;
    -- Read after the gate: every version this transaction takes is greater.
    mark := coalesce(pg_sequence_last_value('fieldsync_versions'), 0);
    PERFORM pg_advisory_xact_lock_shared(mark);
    RETURN mark;
END
$$
"""

_VISIBLE = """
CREATE FUNCTION fieldsync_visible_version() RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    top bigint;
    held bigint;
BEGIN
    -- First the sequence, then the marks: the order is the proof.
    top := coalesce(pg_sequence_last_value('fieldsync_versions'), 0);
    SELECT min((l.classid::bigint << 32) | l.objid::bigint) INTO held
      FROM pg_locks AS l
     WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.classid::bigint < 65536
       AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database());
    RETURN least(top, held);
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE SEQUENCE fieldsync_versions MINVALUE 0 START 1")
    op.execute("SELECT setval('fieldsync_versions', (SELECT counter FROM sync_state WHERE id = 1))")
    op.execute(_BEGIN_WRITE)
    op.execute(_VISIBLE)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "UPDATE sync_state SET counter = "
        "coalesce(pg_sequence_last_value('fieldsync_versions'), counter) WHERE id = 1"
    )
    op.execute("DROP FUNCTION fieldsync_visible_version()")
    op.execute("DROP FUNCTION fieldsync_begin_write(boolean)")
    op.execute("DROP SEQUENCE fieldsync_versions")
