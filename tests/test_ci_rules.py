"""Under ``CI=true`` a skipped PostgreSQL (or browser) test fails the run; locally it is
only skipped.

Runs pytest in a child process with PostgreSQL pointed at a closed port, selecting the
PostgreSQL half of a parametrised test file, so every selected test skips.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UNREACHABLE = "postgresql://postgres@127.0.0.1:9/postgres"


def _run(
    ci: str, target: str = "tests/server/test_push_pull.py", select: str = "postgres"
) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ,
        CI=ci,
        FIELDSYNC_TEST_POSTGRES_URL=UNREACHABLE,
        FIELDSYNC_TEST_CHROMIUM="/nonexistent/chromium",
    )
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", target, "-k", select],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_skipped_postgres_tests_fail_the_run_under_ci() -> None:
    result = _run("true")
    assert "skipped" in result.stdout
    assert result.returncode == 1, result.stdout[-2000:]
    assert "PostgreSQL/app/browser test(s) were skipped" in result.stdout


def test_skipped_postgres_tests_are_only_skipped_locally() -> None:
    result = _run("")
    assert result.returncode == 0, result.stdout[-2000:]
    assert "skipped" in result.stdout and "failed" not in result.stdout


def test_skipped_browser_tests_fail_the_run_under_ci() -> None:
    """The console's Chromium tests count like PostgreSQL's: no browser, no green run."""
    result = _run("true", "tests/console/test_console_browser.py", "switch_language")
    assert "skipped" in result.stdout
    assert result.returncode == 1, result.stdout[-2000:]
