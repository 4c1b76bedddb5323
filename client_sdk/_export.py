"""Exporting unsent work: the user's explicit choice before anything is erased.

``Store.export_unsent(path)`` writes one zip file: ``unsent.json`` (pending writes,
writes the server refused with its error, open conflicts, and the metadata of photos the
server does not hold yet) and ``photos/<id>`` with those photos' bytes. It is plaintext
by nature — the user chose to take their work off the encrypted store — and is written
to a temporary name first, so a crash never leaves half a file under ``path``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import mimetypes
import os
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ._attention import UNSENT_PHOTO_STATES, conflicts, dead_letters
from ._core import StoreCore
from ._errors import SDKError
from ._local.vault import ChunkVault
from ._rows import AttachmentRow

FORMAT = "fieldsync-unsent/1"


def export_unsent(core: StoreCore, path: str | os.PathLike[str]) -> Path:
    target = Path(path)
    with core.lock:
        core.check_usable()
        local = core.local
        document: dict[str, Any] = {
            "format": FORMAT,
            "exported_at": datetime.fromtimestamp(core.clock.time(), UTC).isoformat(),
            "device_id": core.device_id,
            "schema": {"name": core.schema.name, "version": core.schema.version},
            "pending_writes": [
                {
                    "mutation_id": p.id,
                    "collection": p.collection,
                    "record_id": p.record_id,
                    "op": p.op,
                    "fields": p.fields,
                    "base_version": p.base_version,
                    "created_at": p.created_at,
                    "group": p.group,
                }
                for p in local.outbox.entries()
            ],
            "rejected_writes": [dataclasses.asdict(d) for d in dead_letters(core)],
            "open_conflicts": [dataclasses.asdict(c) for c in conflicts(core)],
            "unsent_photos": [],
        }
        photos = local.attachments.in_states(UNSENT_PHOTO_STATES)
        tmp = target.with_name(f".{target.name}.tmp")
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for row in photos:
                document["unsent_photos"].append(_photo(core, archive, row))
            archive.writestr(
                "unsent.json", json.dumps(document, ensure_ascii=False, indent=2, default=str)
            )
        os.replace(tmp, target)
    return target


def _photo(core: StoreCore, archive: zipfile.ZipFile, row: AttachmentRow) -> dict[str, Any]:
    body = row.body
    entry: dict[str, Any] = {
        "id": row.id,
        "collection": row.collection,
        "record_id": row.record_id,
        "state": row.state,
        **{k: body.get(k) for k in ("kind", "mime", "name", "size", "sha256", "captured_at")},
        "location": body.get("location"),
        "file": None,
    }
    size = int(body.get("size") or 0)
    chunks = max(1, math.ceil(size / row.chunk_size))
    for directory in _vault_dirs(core):
        try:
            vault = ChunkVault(core.local, directory)
            data = b"".join(vault.read(row.id, i) for i in range(chunks))
        except (OSError, SDKError):
            continue
        name = f"photos/{row.id}{mimetypes.guess_extension(str(body.get('mime'))) or ''}"
        archive.writestr(name, data)
        entry["file"] = name
        break
    return entry


def _vault_dirs(core: StoreCore) -> list[Path]:
    candidates = [*core.vault_dirs, core.default_vault_dir()]
    return [d for d in dict.fromkeys(candidates) if d is not None and d.is_dir()]
