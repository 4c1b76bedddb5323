"""Which schema a server serves: ``--schema`` / ``FIELDSYNC_SCHEMA`` — a schema file or
``package.module:ATTR`` — and the CRM by default; a bad one stops the server at start."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from server.schema_config import SchemaConfigError, load_schema
from server.settings import Settings
from sync_protocol import CRM_SCHEMA
from tests.support.server_proc import REPO_ROOT, TEST_SECRET, ServerProcess

SCHEMA_FILE = REPO_ROOT / "tests" / "support" / "schemas" / "field_service.toml"
PYTHON_REF = "tests.support.dev_schema:FIELD_SERVICE"


def test_the_crm_is_the_default() -> None:
    assert load_schema(None) is CRM_SCHEMA
    assert load_schema("") is CRM_SCHEMA
    assert Settings().schema_source is None


def test_a_file_and_a_python_attribute_are_both_served_the_same() -> None:
    from_file, from_python = load_schema(str(SCHEMA_FILE)), load_schema(PYTHON_REF)
    assert from_file.name == from_python.name == "field_service"
    assert from_file.describe() == from_python.describe()


def test_the_environment_variable_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIELDSYNC_SCHEMA", PYTHON_REF)
    assert Settings().schema_source == PYTHON_REF


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("inspections", "expected a .toml/.json schema file or package.module:ATTR"),
        ("no_such_package.schemas:APP", "cannot import no_such_package.schemas"),
        ("tests.support.dev_schema:NOT_A_SCHEMA", "is not a sync_protocol.SchemaRegistry"),
        ("tests.support.dev_schema:MISSING", "is not a sync_protocol.SchemaRegistry"),
        ("missing.toml", "cannot be read"),
        ("tests/support/dev_schema.py", "a schema file ends in .toml or .json"),
    ],
)
def test_what_cannot_be_served_is_refused_with_why(source: str, problem: str) -> None:
    with pytest.raises(SchemaConfigError) as refused:
        load_schema(source)
    assert any(problem in p for p in refused.value.problems), refused.value.problems


def _serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server", "serve", "--port", "1", *args],
        cwd=REPO_ROOT,
        env={"PATH": "/usr/bin:/bin", "FIELDSYNC_SECRET_KEY": TEST_SECRET, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_serve_refuses_a_bad_schema_file_before_starting(tmp_path: Path) -> None:
    bad = tmp_path / "app.toml"
    bad.write_text(
        'name = "app"\nversion = 1\n[collections.notes]\nscope = "parent"\n'
        '[collections.notes.fields]\ntext = { type = "text" }\n',
        encoding="utf-8",
    )
    run = _serve("--schema", str(bad), "--database-url", f"sqlite:///{tmp_path}/x.db")
    assert run.returncode == 2
    assert "cannot serve schema" in run.stderr
    assert "collections.notes: scope 'parent' needs both 'parent' and 'parent_field'" in run.stderr
    run = _serve(
        "--database-url", f"sqlite:///{tmp_path}/x.db", env={"FIELDSYNC_SCHEMA": "os.path:sep"}
    )
    assert run.returncode == 2 and "os.path.sep is not a sync_protocol.SchemaRegistry" in run.stderr


def test_schema_check_says_what_a_file_declares_or_what_is_wrong(tmp_path: Path) -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "server", "schema", "check", str(SCHEMA_FILE)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    assert "schema field_service version 1" in ok.stdout
    assert "findings: 2 fields, scope parent of visits" in ok.stdout
    bad = tmp_path / "app.json"
    bad.write_text('{"name": "app", "version": 1, "collections": {}}', encoding="utf-8")
    refused = subprocess.run(
        [sys.executable, "-m", "server", "schema", "check", str(bad)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2 and "collections:" in refused.stderr


def _served_name(proc: ServerProcess) -> str:
    described = httpx.get(f"{proc.url}/v1/sync/schema", timeout=10).json()
    info = httpx.get(f"{proc.url}/v1/sync/info", timeout=10).json()
    assert info["schema_version"] == described["version"]
    return str(described["name"])


def test_a_real_server_process_serves_the_schema_it_is_given(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'server.db'}"
    with ServerProcess(db, serve_args=("--schema", str(SCHEMA_FILE))) as proc:
        assert _served_name(proc) == "field_service"
    with ServerProcess(db, env={"FIELDSYNC_SCHEMA": PYTHON_REF}) as proc:
        assert _served_name(proc) == "field_service"
    with ServerProcess(db) as proc:
        assert _served_name(proc) == CRM_SCHEMA.name
