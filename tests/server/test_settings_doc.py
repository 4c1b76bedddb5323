"""docs/server.md's environment reference is generated from ``Settings``: it fails here
when a setting is added, renamed, re-defaulted or left without a description."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from server.settings_doc import render, undocumented, updated

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "server.md"


def test_every_setting_is_described() -> None:
    assert undocumented() == [], "give these Settings fields a description=…"


def test_docs_server_md_holds_the_generated_reference() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert render() in text, (
        "docs/server.md is out of date: run `python -m server.settings_doc docs/server.md`"
    )


def test_the_command_rewrites_and_checks(tmp_path: Path) -> None:
    stale = tmp_path / "server.md"
    stale.write_text(updated(DOC.read_text(encoding="utf-8")).replace("`900`", "`901`"))
    run = [sys.executable, "-m", "server.settings_doc", str(stale)]
    assert subprocess.run([*run, "--check"], cwd=ROOT).returncode == 1
    assert subprocess.run(run, cwd=ROOT).returncode == 0
    assert subprocess.run([*run, "--check"], cwd=ROOT).returncode == 0
    assert render() in stale.read_text(encoding="utf-8")
