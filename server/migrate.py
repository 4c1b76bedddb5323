"""Run the Alembic migrations programmatically (``fieldsync db upgrade``).

No ``alembic.ini`` is needed: the script location is this package's ``migrations``
folder and the URL is passed in.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from .db import normalize_url

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation: a literal % in a password must be doubled.
    cfg.set_main_option("sqlalchemy.url", normalize_url(database_url).replace("%", "%%"))
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)
    analyze(database_url)


def analyze(database_url: str) -> None:
    """PostgreSQL: refresh the planner's statistics (``ANALYZE``) — after migrations and
    after bulk loads (``fieldsync seed-demo``, bench seeding), so plans do not start from
    a table the planner believes empty. The sync hot paths do not depend on it (their
    lookups are plan-stable, :func:`server.repository.writing.lookup`); reports and
    consoles do. SQLite: nothing."""
    from .db import is_sqlite, make_engine

    if is_sqlite(normalize_url(database_url)):
        return
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
    finally:
        engine.dispose()


def current_revision(database_url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    from .db import make_engine

    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
