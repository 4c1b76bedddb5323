"""The ``fieldsync`` command line, run as a real process (``python -m server``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import func, inspect, select

from server.cli import main
from server.db import make_engine, make_session_factory
from server.migrate import alembic_config, current_revision
from server.models import Record, User
from tests.support.server_proc import REPO_ROOT, TEST_SECRET


def fieldsync(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "FIELDSYNC_ENV": "test", "FIELDSYNC_SECRET_KEY": TEST_SECRET}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "server", *args],
        cwd=REPO_ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_db_upgrade_creates_the_schema_on_a_fresh_database(db_url: str) -> None:
    done = fieldsync("db", "upgrade", "--database-url", db_url)
    assert done.returncode == 0, done.stderr
    head = ScriptDirectory.from_config(alembic_config(db_url)).get_current_head()
    assert head is not None and current_revision(db_url) == head
    engine = make_engine(db_url)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {
        "records",
        "evictions",
        "applied_mutations",
        "audit_log",
        "sync_state",
        "users",
    } <= tables
    again = fieldsync("db", "upgrade", "--database-url", db_url)  # idempotent
    assert again.returncode == 0, again.stderr


def test_seed_demo_user_create_and_production_rules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same commands in-process (``main(argv)``): fast, and the exit codes are real."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("FIELDSYNC_ENV", "test")
    monkeypatch.setenv("FIELDSYNC_SECRET_KEY", TEST_SECRET)
    monkeypatch.setenv("FIELDSYNC_DATABASE_URL", url)

    def run(*args: str) -> tuple[int, str, str]:
        try:
            code = main([*args, "--database-url", url])
        except SystemExit as exc:
            code = int(exc.code or 0)
        out = capsys.readouterr()
        return code, out.out, out.err

    assert run("db", "upgrade")[0] == 0
    code, out, _ = run("seed-demo", "--if-empty", "--customers", "20")
    assert code == 0 and "20 customers" in out
    code, out, _ = run("seed-demo", "--if-empty")
    assert code == 0 and "not added" in out
    code, _, err = run(
        "user", "create", "--username", "rep9", "--password", "a-long-password",
        "--role", "rep", "--team", "team-east",
    )  # fmt: skip
    assert code == 0, err
    monkeypatch.setenv("FIELDSYNC_ENV", "production")
    monkeypatch.setenv("FIELDSYNC_SECRET_KEY", "a-private-production-key")
    code, _, err = run("user", "create", "--username", "rep10", "--password", "fieldsync-demo")
    assert code == 2 and "demo password" in err
    code, _, err = run("seed-demo", "--if-empty")
    assert code == 2 and "development only" in err
    monkeypatch.setenv("FIELDSYNC_SECRET_KEY", "")
    code, _, err = run("db", "upgrade")
    assert code == 2 and "SECRET_KEY" in err
    monkeypatch.setenv("FIELDSYNC_ENV", "test")
    monkeypatch.setenv("FIELDSYNC_SECRET_KEY", TEST_SECRET)
    code, out, _ = run("purge-tombstones", "--older-than-days", "0")
    assert code == 0 and "purge horizon" in out
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as s:
            users = {u.username: (u.role, u.team_id) for u in s.scalars(select(User))}
            customers = s.scalar(
                select(func.count()).select_from(Record).where(Record.collection == "customers")
            )
    finally:
        engine.dispose()
    assert users["rep9"][0] == "rep" and users["rep9"][1] is not None
    assert {"manager", "rep1", "rep2", "admin"} <= set(users)
    assert "rep10" not in users
    assert customers == 20
