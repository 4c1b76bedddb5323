"""Which schema the server serves: ``--schema`` / ``FIELDSYNC_SCHEMA``.

The value is either a declarative schema file (``inspections.toml``, ``app.json``; the
format is :mod:`sync_protocol.schema_file`) or ``package.module:ATTR`` naming a
:class:`~sync_protocol.SchemaRegistry` in Python. Unset, the server serves the CRM
(:data:`sync_protocol.CRM_SCHEMA`). A schema that cannot be served — unreadable,
misspelt, inconsistent — stops the server at start-up with :class:`SchemaConfigError`
listing every problem; it is never half-applied.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from sync_protocol import CRM_SCHEMA, SchemaFileError, SchemaRegistry, parse_schema_file

_PYTHON_REF = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class SchemaConfigError(ValueError):
    """The configured schema cannot be served; ``problems`` says why."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"schema {source}: " + "; ".join(problems))
        self.source = source
        self.problems = problems


def load_schema(source: str | None) -> SchemaRegistry:
    """The registry ``source`` names (``None`` or empty: the CRM's)."""
    if not source:
        return CRM_SCHEMA
    if source.lower().endswith((".toml", ".json")) or Path(source).exists():
        return _read_file(Path(source))
    if not _PYTHON_REF.match(source):
        raise SchemaConfigError(
            source, ["expected a .toml/.json schema file or package.module:ATTR"]
        )
    module_name, attr = source.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SchemaConfigError(source, [f"cannot import {module_name} ({exc})"]) from None
    registry = getattr(module, attr, None)
    if not isinstance(registry, SchemaRegistry):
        raise SchemaConfigError(
            source, [f"{module_name}.{attr} is not a sync_protocol.SchemaRegistry"]
        )
    problems = registry.problems()
    if problems:
        raise SchemaConfigError(source, problems)
    return registry


def _read_file(path: Path) -> SchemaRegistry:
    """A ``.toml`` or ``.json`` schema file (:mod:`sync_protocol.schema_file`)."""
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise SchemaConfigError(str(path), ["a schema file ends in .toml or .json"])
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SchemaConfigError(str(path), [f"cannot be read ({exc})"]) from None
    try:
        return parse_schema_file(text, format="json" if suffix == ".json" else "toml")
    except SchemaFileError as exc:
        raise SchemaConfigError(str(path), exc.problems) from None
