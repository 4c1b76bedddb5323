"""The device side without a server: encryption at rest, size limit, integrity."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from client_sdk import (
    FAST_KDF,
    Attachments,
    AttachmentState,
    AttachmentTooLarge,
    Store,
    TamperedData,
)
from sync_protocol import CRM_SCHEMA
from tests.attachments.images import noise_png

CHUNK = 64 * 1024


def open_store(path: Path) -> Store:
    return Store.open(path, "device-passphrase", schema=CRM_SCHEMA, kdf=FAST_KDF)


def device_files(store_path: Path) -> list[Path]:
    """Everything the store keeps on disk: the SQLite file, its side files, the chunks."""
    files = [p for p in store_path.parent.glob(store_path.name + "*") if p.is_file()]
    folder = Path(f"{store_path}.attachments")
    files += [p for p in folder.rglob("*") if p.is_file()]
    return files


def test_plaintext_of_a_known_image_is_nowhere_on_the_device(tmp_path: Path) -> None:
    image = noise_png()
    assert len(image) > 3 * CHUNK  # several chunks
    source = tmp_path / "camera" / "shelf.png"  # the camera's file, outside the store
    source.parent.mkdir()
    source.write_bytes(image)
    store_path = tmp_path / "device" / "app.db"
    store_path.parent.mkdir()
    store = open_store(store_path)
    attachments = Attachments(store, chunk_size=CHUNK)
    from_path = attachments.add("activities", "visit-1", source, "photo", "image/png")
    from_bytes = attachments.add("activities", "visit-2", image, "photo", "image/png")
    assert attachments.open(from_path.id) == image  # the bytes are really stored...
    assert attachments.open(from_bytes.id) == image
    store.close()

    files = device_files(store_path)
    chunk_files = [p for p in files if p.suffix == ".chunk"]
    assert len(chunk_files) >= 8
    assert sum(p.stat().st_size for p in chunk_files) > 2 * len(image)
    window = image[len(image) // 2 : len(image) // 2 + 32]  # a distinctive 32-byte window
    header_free = image[64 : 64 + 32]
    for path in files:  # ...but never in the clear
        content = path.read_bytes()
        assert image not in content, path
        assert window not in content, path
        assert header_free not in content, path
        assert hashlib.sha256(image).hexdigest().encode() not in content, path

    reopened = open_store(store_path)  # and the right passphrase reads them back
    assert Attachments(reopened, chunk_size=CHUNK).open(from_path.id) == image
    reopened.close()


def test_size_limit_is_enforced_before_anything_is_stored(tmp_path: Path) -> None:
    store = open_store(tmp_path / "app.db")
    attachments = Attachments(store, max_bytes=1000, chunk_size=CHUNK)
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 1001)
    with pytest.raises(AttachmentTooLarge) as info:
        attachments.add("activities", "visit-1", big, "file", "application/octet-stream")
    assert (info.value.size, info.value.limit) == (1001, 1000)
    with pytest.raises(AttachmentTooLarge):
        attachments.add("activities", "visit-1", b"x" * 1001, "file", "application/pdf")
    assert attachments.list("visit-1") == []
    assert attachments.vault.ids() == set()
    ok = attachments.add("activities", "visit-1", b"x" * 1000, "file", "application/pdf")
    assert attachments.status(ok.id).state is AttachmentState.QUEUED
    store.close()


def test_metadata_and_state_are_kept_per_attachment(tmp_path: Path) -> None:
    store = open_store(tmp_path / "app.db")
    attachments = Attachments(store, chunk_size=CHUNK)
    info = attachments.add(
        "activities",
        "visit-1",
        b"signature strokes",
        "signature",
        "image/svg+xml",
        location={"lat": 31.23, "lon": 121.47, "accuracy_m": 8.0},
        captured_at="2026-11-23T09:30:00+00:00",
    )
    again = attachments.status(info.id)
    assert again.kind == "signature"
    assert again.sha256 == hashlib.sha256(b"signature strokes").hexdigest()
    assert again.location == {"lat": 31.23, "lon": 121.47, "accuracy_m": 8.0}
    assert again.captured_at == "2026-11-23T09:30:00+00:00"
    assert (again.state, again.uploaded_bytes, again.local) == (AttachmentState.QUEUED, 0, True)
    assert [a.id for a in attachments.pending()] == [info.id]
    assert attachments.counts() == {"queued": 1}
    store.close()


def test_a_modified_or_swapped_chunk_is_detected(tmp_path: Path) -> None:
    store = open_store(tmp_path / "app.db")
    attachments = Attachments(store, chunk_size=CHUNK)
    info = attachments.add("activities", "v", noise_png(), "photo", "image/png")
    folder = attachments.vault.directory / info.id
    first, second = folder / "000000.chunk", folder / "000001.chunk"
    a, b = first.read_bytes(), second.read_bytes()
    first.write_bytes(b), second.write_bytes(a)  # swapped: each fails its AAD
    with pytest.raises(TamperedData):
        attachments.open(info.id)
    first.write_bytes(a[:-1] + bytes([a[-1] ^ 1]))
    second.write_bytes(b)
    with pytest.raises(TamperedData):
        attachments.open(info.id)
    store.close()


def test_an_interrupted_add_leaves_no_orphan_chunks(tmp_path: Path) -> None:
    store = open_store(tmp_path / "app.db")
    attachments = Attachments(store, chunk_size=CHUNK)
    attachments.vault.write("left-by-a-crash", 0, b"half a photo")
    Attachments(store, chunk_size=CHUNK)  # opening sweeps folders without a row
    assert "left-by-a-crash" not in attachments.vault.ids()
    store.close()
