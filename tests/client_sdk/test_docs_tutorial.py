"""docs/sdk.md's tutorial, executed: every ```python block, in order, in one namespace.

It uses the inspections schema the tutorial declares (not the CRM) through the public
API only, against the in-process ``client_sdk.testing.FakeServer`` (the real server
serves the CRM schema only). Blocks fenced as ```py are illustrations needing a real
server and are not run.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "sdk.md"


def tutorial_blocks() -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    tutorial = text.split("## How it works")[0]
    return re.findall(r"```python\n(.*?)```", tutorial, flags=re.S)


def test_the_tutorial_has_code() -> None:
    assert len(tutorial_blocks()) >= 8


def test_the_tutorial_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"__name__": "tutorial"}
    for number, block in enumerate(tutorial_blocks(), 1):
        try:
            exec(compile(block, f"docs/sdk.md block {number}", "exec"), namespace)
        except Exception as exc:  # pragma: no cover - the message names the block
            raise AssertionError(f"tutorial block {number} failed: {exc!r}\n{block}") from exc
    # the tutorial's own schema, not the CRM's, went through the public API
    assert namespace["INSPECTIONS"].name == "inspections"
    assert "customers" not in namespace["INSPECTIONS"]
    assert not (tmp_path / "inspections.db").exists()  # wiped at the end
    assert not any("client_sdk._" in block for block in tutorial_blocks())  # public API only
    imported = {
        line.split()[1]
        for block in tutorial_blocks()
        for line in block.splitlines()
        if line.startswith("from client_sdk")
    }
    assert imported <= {"client_sdk", "client_sdk.testing"}
