"""The auth generation: one number raised by every change a token is checked against.

``auth_state`` holds a single row; triggers raise its ``generation`` whenever a device
is revoked, wiped, signed out (``token_generation``) or moves to another user, whenever
a user is deactivated, signed out everywhere, changes role or team, or is created or
deleted, and whenever a team changes its manager or is created or deleted (a manager's
scope is the team they lead). A server may then trust a token it verified against the
rows while the generation is unchanged — reading the generation costs nothing extra on
a pull (it comes with the counter) — and still see a revocation made by any instance,
any tool or any raw SQL at once (:mod:`server.authcache`).

It lives in its own table so that a revocation never waits for the sync counter row.
On PostgreSQL the triggers are *deferred constraint triggers*: the generation is raised
at commit, after every other row the transaction locks, so two revocations cannot
deadlock on it; the new generation becomes visible atomically with the revocation.

Revision ID: 0012_auth_state
Revises: 0011_search_scope
Create Date: 2026-12-03 07:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_auth_state"
down_revision: str | None = "0011_search_scope"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: (table, columns whose change raises the generation, raise on insert too)
WATCHED: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    ("devices", ("revoked_at", "wipe", "token_generation", "user_id"), False),
    ("users", ("active", "token_generation", "role", "team_id"), True),
    ("teams", ("manager_id",), True),
)
_BUMP = "UPDATE auth_state SET generation = generation + 1 WHERE id = 1"


def upgrade() -> None:
    table = op.create_table(
        "auth_state",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("generation", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.bulk_insert(table, [{"id": 1, "generation": 0}])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION fieldsync_bump_auth() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN {_BUMP}; RETURN NULL; END $$"
        )
        for name, columns, on_insert in WATCHED:
            changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in columns)
            events = [
                (f"UPDATE OF {', '.join(columns)}", f"WHEN ({changed})"),
                ("DELETE", ""),
            ]
            if on_insert:
                events.append(("INSERT", ""))
            for event, when in events:
                op.execute(
                    f"CREATE CONSTRAINT TRIGGER fieldsync_auth_{name}_{event.split()[0].lower()} "
                    f"AFTER {event} ON {name} DEFERRABLE INITIALLY DEFERRED "
                    f"FOR EACH ROW {when} EXECUTE FUNCTION fieldsync_bump_auth()"
                )
        return
    for name, columns, on_insert in WATCHED:
        changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in columns)
        events = [(f"UPDATE OF {', '.join(columns)}", f"WHEN {changed}"), ("DELETE", "")]
        if on_insert:
            events.append(("INSERT", ""))
        for event, when in events:
            op.execute(
                f"CREATE TRIGGER fieldsync_auth_{name}_{event.split()[0].lower()} "
                f"AFTER {event} ON {name} FOR EACH ROW {when} BEGIN {_BUMP}; END"
            )


def downgrade() -> None:
    for name, _columns, _on_insert in WATCHED:
        for event in ("update", "delete", "insert"):
            if op.get_bind().dialect.name == "postgresql":
                op.execute(f"DROP TRIGGER IF EXISTS fieldsync_auth_{name}_{event} ON {name}")
            else:
                op.execute(f"DROP TRIGGER IF EXISTS fieldsync_auth_{name}_{event}")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS fieldsync_bump_auth()")
    op.drop_table("auth_state")
