"""The SDK's shape, held in place (issue 13, Done-when 5).

* no module over 400 lines;
* deciding (``_engine``), storing (``_local``) and talking (``_transports``) import
  nothing of each other's layers beyond the plan types the local store carries out;
* a push, traced call by call, enters each module once from the runner, in the order
  docs/sdk.md ("A push, step by step") describes, and no module is ever re-entered while
  a module it called is still running.

Import cycles are checked for every package in ``tests/test_layering.py``.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

from client_sdk import FAST_KDF, HttpTransport, Store, SyncClient, SyncConfig, TransportRequest
from client_sdk.testing import FakeServer
from sync_protocol import CRM_SCHEMA

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "client_sdk"
DOC = ROOT / "docs" / "sdk.md"

#: Modules of plain values and the clock seam: calling them is not a step of the path.
VALUE_MODULES = {"_clock.py", "_rows.py", "_models.py", "_status.py", "_events.py"}

#: What each layer may import of the SDK (beyond itself).
LAYERS: dict[str, set[str]] = {
    "_engine": {"_rows", "_errors"},
    "_transports": {"_errors"},
    "_local": {"_rows", "_errors", "_ids", "_models", "_engine.pull", "_engine.responses"},
}


def sdk_files() -> list[Path]:
    return sorted(p for p in PKG.rglob("*.py"))


def test_no_sdk_module_exceeds_400_lines() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in sdk_files()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400
    }
    assert not long, long


def _sdk_imports(path: Path) -> set[str]:
    """Modules of client_sdk imported by ``path``, as dotted names below the package."""
    rel = path.relative_to(PKG).with_suffix("").parts
    base = list(rel if rel[-1] == "__init__" else rel[:-1])
    if base and base[-1] == "__init__":
        base = base[:-1]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            parts = base[: len(base) - node.level + 1] + (
                node.module.split(".") if node.module else []
            )
            out.add(".".join(parts))
        elif isinstance(node, ast.ImportFrom | ast.Import):
            names = (
                [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            )
            out.update(
                n.removeprefix("client_sdk.") for n in names if n and n.startswith("client_sdk.")
            )
    return out


def test_engine_local_and_transports_stay_in_their_lanes() -> None:
    offenders = []
    for layer, allowed in LAYERS.items():
        for path in (PKG / layer).rglob("*.py"):
            for imported in _sdk_imports(path):
                if imported and not imported.startswith(layer) and imported not in allowed:
                    offenders.append(f"{path.relative_to(ROOT)} imports {imported}")
    assert not offenders, "\n".join(offenders)


def test_the_engine_does_no_io() -> None:
    io = {"sqlite3", "httpx", "socket", "os", "pathlib", "shutil", "threading", "zipfile"}
    offenders = [
        f"{p.relative_to(ROOT)} imports {m}"
        for p in (PKG / "_engine").rglob("*.py")
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for m in (
            [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
        )
        if m.split(".")[0] in io
    ]
    assert not offenders, offenders


def documented_push_path() -> list[str]:
    text = DOC.read_text(encoding="utf-8").split("### A push, step by step", 1)[1]
    steps = text.split("\n### ", 1)[0].split("\n---", 1)[0]
    return re.findall(r"^\d+\. `client_sdk/([\w/]+\.py)`", steps, flags=re.MULTILINE)


def _done(hops: list[str]) -> bool:
    return bool(hops) and hops[-1] == "done"


def _module(frame: FrameType) -> str | None:
    try:
        rel = Path(frame.f_code.co_filename).resolve().relative_to(PKG)
    except ValueError:
        return None
    return None if rel.parts[0] == "testing" else rel.as_posix()


def trace_push(tmp_path: Path) -> tuple[list[str], list[str]]:
    """(modules the runner enters, consecutive repeats folded; re-entrances seen)."""
    server = FakeServer()

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        answer = server.handle(
            TransportRequest(request.method, request.url.path, body, dict(request.headers))
        )
        return httpx.Response(answer.status, content=answer.content)

    http = httpx.Client(base_url="http://fake", transport=httpx.MockTransport(handler))
    store = Store.open(tmp_path / "trace.db", "pw", schema=CRM_SCHEMA, kdf=FAST_KDF)
    client = SyncClient(store, HttpTransport(client=http), SyncConfig(sleep=lambda _s: None))
    client.login("rep1", "fieldsync-demo")
    store.collection("customers").insert({"name": "Traced", "status": "potential"})
    stack: list[str | None] = []
    hops: list[str] = []
    reentered: list[str] = []
    entry = ["_sync.py:push", "_runner.py:push"]  # the public call, then the runner's push

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event == "call":
            module = _module(frame)
            caller = next((m for m in reversed(stack) if m), None)
            pushing = "_runner.py:push" in hops or (
                module == "_runner.py" and frame.f_code.co_name == "push"
            )
            if f"{module}:{frame.f_code.co_name}" in entry and f"{module}:push" not in hops:
                hops.append(f"{module}:push")
            elif module and module != caller and pushing and not _done(hops):
                direct = caller == "_runner.py" and module not in VALUE_MODULES
                if direct and hops[-1] != module:
                    hops.append(module)
                if module in stack and module not in VALUE_MODULES:
                    reentered.append(f"{module} re-entered from {caller}")
            stack.append(module)
        elif event == "return" and stack:
            if stack[-1] == "_runner.py" and frame.f_code.co_name == "push":
                hops.append("done")
            stack.pop()

    sys.setprofile(profile)
    try:
        client.push()
    finally:
        sys.setprofile(None)
    store.close()
    return hops, reentered


def test_a_push_enters_each_module_once_in_the_documented_order(tmp_path: Path) -> None:
    documented = documented_push_path()
    assert len(documented) >= 6, "docs/sdk.md lost its push path"
    hops, reentered = trace_push(tmp_path)
    assert hops[:2] == ["_sync.py:push", "_runner.py:push"] and hops[-1] == "done"
    hops = hops[2:-1]
    assert hops == documented
    assert len(set(hops)) == len(hops)  # each module once
    assert not reentered, reentered


def test_the_sdk_extra_installs_everything_the_sdk_imports() -> None:
    """docs/sdk.md's install line (``pip install '.[sdk]'``) is enough for client_sdk."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = {
        re.split(r"[<>=\[ ]", d, maxsplit=1)[0].lower()
        for d in [*project["dependencies"], *project["optional-dependencies"]["sdk"]]
    }
    distribution = {"argon2": "argon2-cffi", "cryptography": "cryptography", "httpx": "httpx"}
    distribution["pydantic"] = "pydantic"
    needed: set[str] = set()
    for path in [*sdk_files(), *sorted((ROOT / "sync_protocol").rglob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                needed.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                needed.add(node.module.split(".")[0])
    third_party = needed - set(sys.stdlib_module_names) - {"client_sdk", "sync_protocol"}
    assert third_party <= set(distribution), f"map these to distributions: {third_party}"
    assert {distribution[m] for m in third_party} <= declared


def test_sql_and_sealing_live_only_in_the_local_store() -> None:
    """Round 1 had SQL in eight modules; now only ``_local`` writes SQL or seals."""
    sql = re.compile(r"\b(SELECT|INSERT INTO|UPDATE \w+ SET|DELETE FROM|CREATE TABLE)\b|sqlite3")
    sealing = re.compile(r"\bAESGCM\b|\bAesGcmCipher\b|\.seal\(")
    outside = [
        str(p.relative_to(ROOT))
        for p in sdk_files()
        if "_local" not in p.parts
        and (sql.search(text := p.read_text(encoding="utf-8")) or sealing.search(text))
    ]
    assert not outside, outside
