"""The ``/v1/attachments`` protocol in-process (FastAPI TestClient), on SQLite and
PostgreSQL: registration, chunks, verification, scope of not-yet-synced records."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from server.attachments import MemoryBlobStorage
from server.settings import Settings
from sync_protocol.possession import possession_proof
from tests.attachments.images import noise_png
from tests.support.server_proc import TEST_SECRET, migrate, seed_demo

CHUNK = 16 * 1024


def _app_client(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("FIELDSYNC_ATTACHMENTS_BACKEND", "memory")
    monkeypatch.setenv("FIELDSYNC_ATTACHMENTS_MAX_BYTES", str(1024 * 1024))
    migrate(db_url)
    seed_demo(db_url, customers=4)
    app = create_app(Settings(env="test", database_url=db_url, secret_key=TEST_SECRET))
    with TestClient(app) as client:
        yield client


@pytest.fixture
def app_client(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """On SQLite and PostgreSQL (the SQL that matters: registration, scope lookups)."""
    yield from _app_client(db_url, monkeypatch)


@pytest.fixture
def sqlite_client(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    yield from _app_client(sqlite_url, monkeypatch)


def signed_in(client: TestClient, user: str) -> dict[str, str]:
    response = client.post(
        "/v1/auth/login",
        json={"username": user, "password": "fieldsync-demo", "device_id": f"dev-{user}"},
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def registration(attachment_id: str, data: bytes, record_id: str = "visit-1") -> dict[str, Any]:
    return {
        "id": attachment_id,
        "collection": "activities",
        "record_id": record_id,
        "kind": "photo",
        "mime": "image/png",
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "chunk_size": CHUNK,
        "captured_at": "2026-11-23T10:00:00+00:00",
        "location": {"lat": 39.9, "lon": 116.4},
    }


def chunks_of(data: bytes) -> list[bytes]:
    return [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]


def code_of(response: Any) -> str:
    return str(response.json()["error"]["code"])


def test_register_upload_verify_and_download(app_client: TestClient) -> None:
    rep1 = signed_in(app_client, "rep1")
    data = noise_png(128, 128)
    parts = chunks_of(data)
    assert len(parts) >= 3

    first = app_client.post("/v1/attachments", json=registration("a1", data), headers=rep1)
    assert first.status_code == 201
    assert (first.json()["status"], first.json()["received_chunks"]) == ("pending", [])
    again = app_client.post("/v1/attachments", json=registration("a1", data), headers=rep1)
    assert again.status_code == 200  # idempotent
    other = registration("a1", data + b"!")
    assert code_of(app_client.post("/v1/attachments", json=other, headers=rep1)) == "conflict"

    url = "/v1/attachments/a1/chunks"
    short = app_client.put(f"{url}/0", content=parts[0][:-1], headers=rep1)
    assert (short.status_code, code_of(short)) == (422, "validation_failed")
    wrong_hash = {**rep1, "X-Chunk-SHA256": hashlib.sha256(b"other").hexdigest()}
    assert app_client.put(f"{url}/0", content=parts[0], headers=wrong_hash).status_code == 422
    assert app_client.put(f"{url}/{len(parts)}", content=b"x", headers=rep1).status_code == 422
    for index in reversed(range(1, len(parts))):
        assert (
            app_client.put(f"{url}/{index}", content=parts[index], headers=rep1).status_code == 200
        )

    state = app_client.get("/v1/attachments/a1", headers=rep1).json()
    assert state["received_chunks"] == list(range(1, len(parts)))
    missing = app_client.post("/v1/attachments/a1/complete", headers=rep1)
    assert (missing.status_code, missing.json()["error"]["details"]["missing_chunks"]) == (
        409,
        [0],
    )
    pending = app_client.get("/v1/attachments/a1/content", headers=rep1)
    assert pending.status_code == 409

    assert app_client.put(f"{url}/0", content=parts[0], headers=rep1).status_code == 200
    done = app_client.post("/v1/attachments/a1/complete", headers=rep1)
    assert done.status_code == 200 and done.json()["status"] == "complete"
    assert app_client.post("/v1/attachments/a1/complete", headers=rep1).status_code == 200
    content = app_client.get("/v1/attachments/a1/content", headers=rep1)
    assert content.content == data and content.headers["content-type"] == "image/png"
    listed = app_client.get("/v1/attachments", params={"record_id": "visit-1"}, headers=rep1)
    [meta] = listed.json()["attachments"]
    assert meta["location"]["lat"] == 39.9 and meta["captured_at"].startswith("2026-11-23")

    pil = pytest.importorskip("PIL.Image")
    thumb = app_client.get("/v1/attachments/a1/thumbnail?size=32", headers=rep1)
    with pil.open(io.BytesIO(thumb.content)) as picture:
        assert picture.size == (32, 32)


def test_bytes_that_do_not_match_the_digest_are_refused_and_discarded(
    sqlite_client: TestClient,
) -> None:
    rep1 = signed_in(sqlite_client, "rep1")
    claimed, sent = b"a" * (CHUNK + 10), b"b" * (CHUNK + 10)
    sqlite_client.post("/v1/attachments", json=registration("liar", claimed), headers=rep1)
    for index, part in enumerate(chunks_of(sent)):
        sqlite_client.put(f"/v1/attachments/liar/chunks/{index}", content=part, headers=rep1)
    refused = sqlite_client.post("/v1/attachments/liar/complete", headers=rep1)
    assert (refused.status_code, code_of(refused)) == (422, "validation_failed")
    state = sqlite_client.get("/v1/attachments/liar", headers=rep1).json()
    assert (state["status"], state["received_chunks"]) == ("pending", [])
    storage = sqlite_client.app.state.attachments.storage  # type: ignore[attr-defined]
    assert isinstance(storage, MemoryBlobStorage)
    assert list(storage.digests()) == []


def test_known_content_completes_with_a_possession_proof(sqlite_client: TestClient) -> None:
    """A device that holds the bytes of content the server already has proves it (an
    HMAC over them under a fresh nonce) instead of uploading; the blob is stored once."""
    rep1, rep2 = signed_in(sqlite_client, "rep1"), signed_in(sqlite_client, "rep2")
    data = b"the same delivery note"
    sqlite_client.post("/v1/attachments", json=registration("x1", data), headers=rep1)
    sqlite_client.put("/v1/attachments/x1/chunks/0", content=data, headers=rep1)
    sqlite_client.post("/v1/attachments/x1/complete", headers=rep1)
    twin = sqlite_client.post(
        "/v1/attachments", json=registration("x2", data, "visit-2"), headers=rep2
    )
    assert twin.status_code == 201 and twin.json()["status"] == "pending"
    nonce = twin.json()["proof_nonce"]
    assert nonce and len(nonce) == 64
    proof = possession_proof(nonce, [data])
    done = sqlite_client.post("/v1/attachments/x2/complete", json={"proof": proof}, headers=rep2)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "complete" and done.json()["proof_nonce"] is None
    assert sqlite_client.get("/v1/attachments/x2/content", headers=rep2).content == data
    storage = sqlite_client.app.state.attachments.storage  # type: ignore[attr-defined]
    assert list(storage.digests()) == [hashlib.sha256(data).hexdigest()]


def test_knowing_a_hash_does_not_give_the_file(sqlite_client: TestClient) -> None:
    """rep2 learned the SHA-256 of rep1's photo (issue 12, defect 8): registering it
    under a record of rep2's own gives a nonce, not the photo — completing without the
    bytes is refused however it is tried, and the content is never served."""
    rep1, rep2 = signed_in(sqlite_client, "rep1"), signed_in(sqlite_client, "rep2")
    photo = noise_png(64, 64)
    sqlite_client.post("/v1/attachments", json=registration("own", photo), headers=rep1)
    for i, chunk in enumerate(chunks_of(photo)):
        sqlite_client.put(f"/v1/attachments/own/chunks/{i}", content=chunk, headers=rep1)
    assert sqlite_client.post("/v1/attachments/own/complete", headers=rep1).status_code == 200

    stolen = sqlite_client.post(
        "/v1/attachments", json=registration("stolen", photo, "visit-9"), headers=rep2
    )
    assert stolen.status_code == 201 and stolen.json()["status"] == "pending"
    nonce = stolen.json()["proof_nonce"]
    # Completing with nothing, with a proof over the hash, with someone else's nonce:
    bare = sqlite_client.post("/v1/attachments/stolen/complete", headers=rep2)
    assert (bare.status_code, code_of(bare)) == (409, "conflict")
    digest = hashlib.sha256(photo).hexdigest().encode()
    for proof in (possession_proof(nonce, [digest]), possession_proof("00" * 32, [photo])):
        wrong = sqlite_client.post(
            "/v1/attachments/stolen/complete", json={"proof": proof}, headers=rep2
        )
        assert (wrong.status_code, code_of(wrong)) == (422, "validation_failed")
    content = sqlite_client.get("/v1/attachments/stolen/content", headers=rep2)
    assert (content.status_code, code_of(content)) == (409, "conflict")
    assert sqlite_client.get("/v1/attachments/stolen", headers=rep2).json()["status"] == "pending"


def test_before_its_record_syncs_an_attachment_follows_its_uploader(
    app_client: TestClient,
) -> None:
    """The photo may reach the server before the visit: the uploader's scope applies."""
    rep1, rep2 = signed_in(app_client, "rep1"), signed_in(app_client, "rep2")
    manager = signed_in(app_client, "manager")
    data = b"early photo"
    app_client.post(
        "/v1/attachments", json=registration("early", data, "visit-later"), headers=rep1
    )
    params = {"record_id": "visit-later"}

    def ids(headers: dict[str, str]) -> list[str]:
        body = app_client.get("/v1/attachments", params=params, headers=headers).json()
        return [a["id"] for a in body["attachments"]]

    assert ids(rep1) == ["early"] and ids(manager) == ["early"] and ids(rep2) == []
    assert app_client.get("/v1/attachments/early", headers=rep2).status_code == 403
    # Only the uploader sends bytes, even a manager who may see them may not.
    put = app_client.put("/v1/attachments/early/chunks/0", content=data, headers=manager)
    assert (put.status_code, code_of(put)) == (403, "forbidden")


def test_limits_and_unknown_collections(sqlite_client: TestClient) -> None:
    rep1 = signed_in(sqlite_client, "rep1")
    limits = sqlite_client.get("/v1/attachments/limits", headers=rep1).json()
    assert limits["max_bytes"] == 1024 * 1024
    bad = {**registration("c1", b"x"), "collection": "_conflicts"}
    assert code_of(sqlite_client.post("/v1/attachments", json=bad, headers=rep1)) == (
        "unknown_collection"
    )
    big = {**registration("c2", b"x"), "size": 1024 * 1024 + 1}
    response = sqlite_client.post("/v1/attachments", json=big, headers=rep1)
    assert (response.status_code, code_of(response)) == (413, "payload_too_large")
    unauthenticated = sqlite_client.get("/v1/attachments", params={"record_id": "r"})
    assert unauthenticated.status_code == 401
