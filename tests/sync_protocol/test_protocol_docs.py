"""docs/protocol.md and the generated JSON Schemas in docs/protocol/ stay true to the code."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from sync_protocol import DeletePolicy, ErrorCode, FieldType, MergePolicy
from sync_protocol.errors import HTTP_STATUS
from sync_protocol.jsonschema import MESSAGE_MODELS, drift, schema_documents, write

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "protocol.md"
SCHEMAS = ROOT / "docs" / "protocol"


def test_committed_schemas_match_the_models(tmp_path: Path) -> None:
    write(tmp_path)
    generated = {p.name: p.read_text(encoding="utf-8") for p in tmp_path.iterdir()}
    committed = {p.name: p.read_text(encoding="utf-8") for p in SCHEMAS.glob("*.json")}
    assert committed == generated, (
        "docs/protocol/ is out of date: run `python -m sync_protocol.jsonschema docs/protocol`"
    )


def test_generation_is_stable_and_canonical() -> None:
    first, second = schema_documents(), schema_documents()
    assert first == second
    for name, text in first.items():
        assert text.endswith("}\n"), name
        assert (
            json.dumps(json.loads(text), sort_keys=True, indent=2, ensure_ascii=False) + "\n"
            == text
        )
    assert "crm-schema.json" in first
    assert {f"{m.__name__}.json" for m in MESSAGE_MODELS} < set(first)


def test_the_command_writes_and_checks(tmp_path: Path) -> None:
    run = [sys.executable, "-m", "sync_protocol.jsonschema", str(tmp_path)]
    subprocess.run(run, check=True, cwd=ROOT, capture_output=True)
    assert drift(tmp_path) == []
    assert subprocess.run([*run, "--check"], cwd=ROOT, capture_output=True).returncode == 0
    (tmp_path / "Mutation.json").write_text("{}\n", encoding="utf-8")
    (tmp_path / "Stale.json").write_text("{}\n", encoding="utf-8")
    assert drift(tmp_path) == ["Mutation.json", "Stale.json"]
    assert subprocess.run([*run, "--check"], cwd=ROOT, capture_output=True).returncode == 1


def test_protocol_md_names_every_error_code_and_message() -> None:
    text = DOCS.read_text(encoding="utf-8")
    missing = [c.value for c in ErrorCode if f"`{c.value}`" not in text]
    missing += [m.__name__ for m in MESSAGE_MODELS if f"`{m.__name__}`" not in text]
    missing += [p.value for p in (*MergePolicy, *DeletePolicy) if f"`{p.value}`" not in text]
    missing += [t.value for t in FieldType if f"`{t.value}`" not in text]
    assert not missing, f"docs/protocol.md does not mention: {missing}"


def test_protocol_md_states_each_error_codes_http_status() -> None:
    text = DOCS.read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `([a-z_]+)` \| (\d{3}) \|", text, flags=re.MULTILINE))
    assert {code.value: str(status) for code, status in HTTP_STATUS.items()} == rows


def test_protocol_md_json_examples_parse() -> None:
    text = DOCS.read_text(encoding="utf-8")
    blocks = re.findall(r"```json\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) >= 10
    for block in blocks:
        json.loads(block)


def test_protocol_md_labelled_examples_validate_against_their_models() -> None:
    text = DOCS.read_text(encoding="utf-8")
    models = {m.__name__: m for m in MESSAGE_MODELS}
    labelled = re.findall(r"<!-- example: (\w+) -->\n```json\n(.*?)```", text, flags=re.DOTALL)
    assert {name for name, _ in labelled} >= {
        "LoginRequest",
        "TokenResponse",
        "PushRequest",
        "PushResponse",
        "PullRequest",
        "PullResponse",
        "Mutation",
        "ConflictRecord",
        "ErrorResponse",
        "SyncInfo",
    }
    for name, block in labelled:
        models[name].model_validate(json.loads(block))
