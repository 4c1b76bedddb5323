"""The dependency arrows of DESIGN.md, held in place.

    sync_protocol ──► client_sdk ──► mobile_app
          └────────► server

* sync_protocol imports nothing of ours and does no I/O (no network, disk or database
  libraries);
* server and client_sdk import sync_protocol, never each other;
* mobile_app imports client_sdk and sync_protocol, never server;
* mobile_app's view-models never import kivy (they are tested without a window).

Imports are read from the source with ``ast`` so that a lazy import inside a function
counts as much as one at the top of a module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("sync_protocol", "server", "client_sdk", "mobile_app")

ALLOWED: dict[str, set[str]] = {
    "sync_protocol": set(),
    "server": {"sync_protocol"},
    "client_sdk": {"sync_protocol"},
    "mobile_app": {"sync_protocol", "client_sdk"},
}

#: Third-party or stdlib modules that would mean I/O inside the pure protocol package.
IO_MODULES = {
    "socket",
    "sqlite3",
    "httpx",
    "requests",
    "urllib",
    "http",
    "sqlalchemy",
    "psycopg",
    "sqlite_utils",
    "asyncio",
    "subprocess",
    "fastapi",
    "kivy",
    "os",
    "shutil",
    "pathlib",
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def package_files(package: str) -> list[Path]:
    return sorted(p for p in (ROOT / package).rglob("*.py") if "migrations" not in p.parts)


@pytest.mark.parametrize("package", PACKAGES)
def test_package_imports_only_what_it_may(package: str) -> None:
    offenders = []
    for path in package_files(package):
        for module in imported_modules(path):
            top = module.split(".")[0]
            if top in PACKAGES and top != package and top not in ALLOWED[package]:
                offenders.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not offenders, "dependency arrow broken:\n" + "\n".join(offenders)


def test_sync_protocol_does_no_io() -> None:
    offenders = []
    for path in package_files("sync_protocol"):
        if path.name == "jsonschema.py":  # the schema generator command writes files
            continue
        for module in imported_modules(path):
            if module.split(".")[0] in IO_MODULES:
                offenders.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not offenders, "\n".join(offenders)


def test_viewmodels_never_import_kivy() -> None:
    vm = ROOT / "mobile_app" / "viewmodels"
    if not vm.exists():
        pytest.fail("mobile_app/viewmodels is missing")
    offenders = [
        f"{p.relative_to(ROOT)} imports {m}"
        for p in sorted(vm.rglob("*.py"))
        for m in imported_modules(p)
        if m.split(".")[0] == "kivy"
    ]
    assert not offenders, "\n".join(offenders)


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    """Guard the guard: the ast reader must find a lazy import inside a function."""
    sample = tmp_path / "x.py"
    sample.write_text("def f():\n    from server.app import create_app\n", encoding="utf-8")
    assert "server.app" in imported_modules(sample)
