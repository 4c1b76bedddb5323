"""Suite-wide fixtures and the CI rule that PostgreSQL and app tests may not be skipped.

* ``postgres_url`` — a fresh, empty PostgreSQL database per test (created and dropped
  on the server named by ``FIELDSYNC_TEST_POSTGRES_URL``, default the local one).
  When no server is reachable the test is skipped — except under ``CI=true``, where
  the run fails instead (see ``pytest_terminal_summary``).
* ``browser`` tests (``tests/console/``) drive a real Chromium: skipped locally when it
  is missing, a failure under ``CI=true`` like the PostgreSQL and app tests.
* ``db_url`` — parametrised over SQLite and PostgreSQL for tests that must hold on both.
* Kivy runs headless: the environment variables below are set before anything can
  import kivy.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.dbtemplate import DatabaseTemplate

_KIVY_HOME = tempfile.mkdtemp(prefix="fieldsync-kivy-")
os.environ.setdefault("KIVY_NO_ARGS", "1")
os.environ.setdefault("KIVY_HOME", _KIVY_HOME)
os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
os.environ.setdefault("KIVY_NO_FILELOG", "1")
os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")
os.environ.setdefault("KIVY_WINDOW", "sdl2")
os.environ.setdefault("KIVY_GL_BACKEND", "sdl2")
os.environ.setdefault("KIVY_AUDIO", "")

POSTGRES_ADMIN_URL = os.environ.get(
    "FIELDSYNC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

#: Markers whose skips fail the run under CI=true.
_MUST_RUN_MARKERS = ("postgres", "app", "browser")

_pg_reachable: bool | None = None


def postgres_reachable() -> bool:
    global _pg_reachable
    if _pg_reachable is None:
        try:
            import psycopg

            with psycopg.connect(_libpq_url(POSTGRES_ADMIN_URL), connect_timeout=3):
                pass
            _pg_reachable = True
        except Exception:
            _pg_reachable = False
    return _pg_reachable


def _libpq_url(url: str) -> str:
    """psycopg wants ``postgresql://``; SQLAlchemy URLs may say ``postgresql+psycopg://``."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def sqlalchemy_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


@contextlib.contextmanager
def scratch_postgres(
    prefix: str = "fs_test", template: DatabaseTemplate | None = None
) -> Iterator[str]:
    """A fresh PostgreSQL database (SQLAlchemy URL), dropped on exit. Skips the caller
    when no server is reachable — which ``pytest_sessionfinish`` turns into a failure
    under CI=true, so PostgreSQL tests are never silently skipped there.

    ``template``: created as a copy of that template instead of empty (see
    :func:`register_db_template`)."""
    if not postgres_reachable():
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}")
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = _libpq_url(POSTGRES_ADMIN_URL)
    url = sqlalchemy_url(f"{admin.rsplit('/', 1)[0]}/{name}")
    if template is not None:
        template.create_postgres(url)
    else:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def scratch_database(kind: str, tmp_dir: Path, prefix: str = "fs_test") -> Iterator[str]:
    """``kind`` "sqlite" (a file in ``tmp_dir``) or "postgres" (:func:`scratch_postgres`)."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_dir / 'fieldsync.db'}"
        return
    with scratch_postgres(prefix) as url:
        yield url


#: (module, name) of a fixture that builds on ``db_url``/``postgres_url`` -> the template
#: its database is filled from (tests/support/dbtemplate.py).
_DB_TEMPLATES: dict[tuple[str, str], DatabaseTemplate] = {}
_DB_TEMPLATE_KEY = pytest.StashKey[DatabaseTemplate]()


def register_db_template(fixture: Any, template: DatabaseTemplate) -> None:
    """``fixture`` (a fixture function taking ``db_url`` or ``postgres_url``) always fills
    its empty database from ``template`` (``template.fill(url)``). A test using it then
    gets its PostgreSQL database created as a copy of the template straight away,
    instead of empty and then dropped and re-created by ``fill``. Anything else using
    ``postgres_url``/``db_url`` still gets an empty database."""
    _DB_TEMPLATES[(fixture.__module__, fixture.__name__)] = template


def _template_for(item: pytest.Item) -> DatabaseTemplate | None:
    info = getattr(item, "_fixtureinfo", None)  # pytest internals: degrade to no template
    for defs in getattr(info, "name2fixturedefs", {}).values():
        func = getattr(defs[-1], "func", None) if defs else None
        key = (getattr(func, "__module__", ""), getattr(func, "__name__", ""))
        template = _DB_TEMPLATES.get(key)
        if template is not None and {"db_url", "postgres_url"} & set(defs[-1].argnames):
            return template
    return None


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh PostgreSQL database (SQLAlchemy URL), dropped after the test."""
    with scratch_postgres(template=request.node.stash.get(_DB_TEMPLATE_KEY, None)) as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'fieldsync.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on an SQLite file and on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'fieldsync.db'}"
    return str(request.getfixturevalue("postgres_url"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        template = _template_for(item)
        if template is not None:
            item.stash[_DB_TEMPLATE_KEY] = template
        if "postgres_url" in getattr(item, "fixturenames", ()) and not item.get_closest_marker(
            "postgres"
        ):
            item.add_marker(pytest.mark.postgres)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int) -> None:
    """Under CI=true a skipped PostgreSQL, app or browser test fails the whole run."""
    if not IN_CI:
        return
    bad = []
    for report in terminalreporter.stats.get("skipped", []):
        keywords = getattr(report, "keywords", {})
        if any(m in keywords for m in _MUST_RUN_MARKERS):
            bad.append(report.nodeid)
    if bad:
        terminalreporter.write_line(
            f"CI=true: {len(bad)} PostgreSQL/app/browser test(s) were skipped; failing the run:",
            red=True,
        )
        for nodeid in bad:
            terminalreporter.write_line(f"  {nodeid}", red=True)
        terminalreporter._session.exitstatus = pytest.ExitCode.TESTS_FAILED  # type: ignore[attr-defined]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not IN_CI:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    for report in reporter.stats.get("skipped", []):
        if any(m in getattr(report, "keywords", {}) for m in _MUST_RUN_MARKERS):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
            return
