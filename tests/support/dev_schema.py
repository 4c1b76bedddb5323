"""A developer's schema as a Python attribute (for ``--schema tests.support.dev_schema:FIELD_SERVICE``)."""

from __future__ import annotations

from pathlib import Path

from sync_protocol import parse_schema_file

FIELD_SERVICE = parse_schema_file(
    (Path(__file__).parent / "schemas" / "field_service.toml").read_text(encoding="utf-8")
)
NOT_A_SCHEMA = {"name": "field_service"}
