"""Generate the JSON Schemas of the wire messages into ``docs/protocol/``.

``python -m sync_protocol.jsonschema docs/protocol`` writes one ``<Model>.json`` per
message model, ``crm-schema.json`` (the CRM entity schemas, as served at
``GET /v1/sync/schema``) and ``schema-file.json`` (the format of declarative schema
files). Output is stable — sorted keys, two-space indent, a trailing
newline — so the committed files can be compared byte for byte: a test regenerates them
and fails when they drift from the models. ``--check`` does the same comparison and exits
with status 1 on drift (for CI).

This is the one module of the package that touches the file system; it runs only as a
command, never on import of :mod:`sync_protocol`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from .attachments import (
    AttachmentLimits,
    AttachmentList,
    AttachmentOut,
    ChunkReceived,
    CompleteAttachment,
    GeoLocation,
    RegisterAttachment,
)
from .crm import CRM_SCHEMA
from .errors import ErrorBody, ErrorResponse, FieldError
from .messages import (
    Change,
    ConflictRecord,
    LoginRequest,
    Mutation,
    MutationResult,
    PullRequest,
    PullResponse,
    PushRequest,
    PushResponse,
    RefreshRequest,
    SyncInfo,
    SyncLimits,
    TokenResponse,
    UserInfo,
)
from .schema_file import schema_file_json_schema
from .status import DeviceStatus

#: Every model that crosses the wire, in the order docs/protocol.md introduces them.
MESSAGE_MODELS: tuple[type[BaseModel], ...] = (
    LoginRequest,
    RefreshRequest,
    TokenResponse,
    UserInfo,
    SyncInfo,
    SyncLimits,
    PushRequest,
    Mutation,
    PushResponse,
    MutationResult,
    PullRequest,
    DeviceStatus,
    PullResponse,
    Change,
    ConflictRecord,
    ErrorResponse,
    ErrorBody,
    FieldError,
    RegisterAttachment,
    GeoLocation,
    AttachmentOut,
    AttachmentList,
    ChunkReceived,
    CompleteAttachment,
    AttachmentLimits,
)

CRM_SCHEMA_FILE = "crm-schema.json"
#: The JSON Schema of declarative schema files (:mod:`sync_protocol.schema_file`).
SCHEMA_FILE_FORMAT = "schema-file.json"


def render(document: Any) -> str:
    """The canonical text of a JSON document: sorted keys, indent 2, trailing newline."""
    return json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def schema_documents() -> dict[str, str]:
    """File name → text of every generated schema file."""
    docs = {
        f"{model.__name__}.json": render(model.model_json_schema(mode="validation"))
        for model in MESSAGE_MODELS
    }
    docs[CRM_SCHEMA_FILE] = render(CRM_SCHEMA.describe())
    docs[SCHEMA_FILE_FORMAT] = render(schema_file_json_schema())
    return docs


def write(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in schema_documents().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def drift(directory: Path) -> list[str]:
    """Names of files that are missing, stale or unexpected in ``directory``."""
    expected = schema_documents()
    problems = [
        name
        for name, text in expected.items()
        if not (directory / name).is_file()
        or (directory / name).read_text(encoding="utf-8") != text
    ]
    if directory.is_dir():
        problems += sorted(p.name for p in directory.glob("*.json") if p.name not in expected)
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sync_protocol.jsonschema", description=__doc__.split("\n")[0]
    )
    parser.add_argument("directory", type=Path, help="output directory, e.g. docs/protocol")
    parser.add_argument(
        "--check", action="store_true", help="compare instead of writing; exit 1 on drift"
    )
    args = parser.parse_args(argv)
    if args.check:
        stale = drift(args.directory)
        for name in stale:
            print(f"out of date: {args.directory / name}", file=sys.stderr)
        return 1 if stale else 0
    for path in write(args.directory):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
