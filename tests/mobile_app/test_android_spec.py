"""buildozer.spec declares every Android permission the app uses (and no other), and its
requirements cover every third-party import of the packaged code with the run-time
dependencies of those distributions (read from the installed metadata)."""

from __future__ import annotations

import ast
import configparser
import importlib.metadata as metadata
import re
import sys
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
PACKAGED = ("mobile_app", "client_sdk", "sync_protocol")
#: Imports that python-for-android provides as recipes rather than PyPI distributions.
RECIPES = {"android": "android", "jnius": "pyjnius", "kivy": "kivy"}
#: Declared dependencies not needed on the phone: pip (sqlite-utils' plugin installer)
#: and Kivy's desktop-only requirements (its p4a recipe brings what Android needs).
NOT_ON_PHONE = {"pip", "kivy-garden", "docutils", "pygments", "requests", "filetype"}
#: Native libraries p4a needs beside the Python distributions.
NATIVE = {"python3", "openssl", "sqlite3"}


def spec() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ROOT / "buildozer.spec", encoding="utf-8")
    return parser


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def third_party_imports() -> set[str]:
    found: set[str] = set()
    for package in PACKAGED:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text("utf-8"))):
                if isinstance(node, ast.Import):
                    found.update(a.name.split(".")[0] for a in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m not in PACKAGED}


def requirement_names() -> set[str]:
    raw = spec()["app"]["requirements"]
    return {normalise(re.split(r"[=<>!~]", item.strip())[0]) for item in raw.split(",")}


def needed_distributions() -> set[str]:
    """Distributions of the imports plus their run-time dependencies, transitively."""
    by_module = metadata.packages_distributions()
    env = {**default_environment(), "sys_platform": "linux", "extra": ""}
    todo = []
    for module in sorted(third_party_imports()):
        if module in RECIPES:
            todo.append(RECIPES[module])
            continue
        assert module in by_module, f"{module} is imported but not installed"
        todo.extend(by_module[module])
    seen: set[str] = set()
    while todo:
        name = normalise(todo.pop())
        if name in seen or name in NOT_ON_PHONE:
            continue
        seen.add(name)
        if name in RECIPES.values() and name == "kivy":
            continue  # the recipe brings its own dependencies
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue  # a p4a recipe (android, pyjnius)
        for line in requires:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate(env):
                todo.append(req.name)
    return seen


def test_requirements_cover_every_import_and_its_dependencies() -> None:
    declared = requirement_names()
    needed = needed_distributions()
    missing = needed - declared
    assert not missing, f"buildozer.spec requirements lack {sorted(missing)}"
    unused = declared - needed - NATIVE
    assert not unused, f"buildozer.spec requires what nothing imports: {sorted(unused)}"


def test_every_permission_the_app_uses_is_declared_and_no_other() -> None:
    from mobile_app.ui.platform import MANIFEST_PERMISSIONS

    raw = spec()["app"]["android.permissions"]
    declared = set(re.findall(r"(?:android\.permission\.)?([A-Z_]{4,})", raw))
    # every permission name the code asks for at run time …
    asked: set[str] = set()
    for path in (ROOT / "mobile_app").rglob("*.py"):
        text = path.read_text("utf-8")
        for group in re.findall(r"_PERMISSIONS = \(([^)]*)\)", text):
            asked.update(re.findall(r'"([A-Z_]+)"', group))
    assert asked, "the permission tables were not found"
    assert asked <= set(MANIFEST_PERMISSIONS)
    # … plus network (httpx) and media (file chooser) are in the app's table
    assert {"INTERNET", "ACCESS_NETWORK_STATE", "READ_MEDIA_IMAGES"} <= set(MANIFEST_PERMISSIONS)
    assert declared == set(MANIFEST_PERMISSIONS), (
        f"spec {sorted(declared)} vs app {sorted(MANIFEST_PERMISSIONS)}"
    )


def test_the_fonts_ship_with_their_licences() -> None:
    fonts = ROOT / "mobile_app" / "fonts"
    assert "ttf" in spec()["app"]["source.include_exts"].split(",")
    for font, licence in (
        ("wqy-microhei.ttc", "LICENSE-wqy-microhei.txt"),
        ("MaterialIcons-Regular.ttf", "LICENSE-material-icons.txt"),
    ):
        assert (fonts / font).is_file()
        assert "Apache License" in (fonts / licence).read_text("utf-8")
        assert font in (fonts / "README.md").read_text("utf-8")
