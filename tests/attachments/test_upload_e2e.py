"""Attachments against a real server process over real HTTP (issue 8's "done when")."""

from __future__ import annotations

import hashlib
import io
import os
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from client_sdk import (
    AttachmentDownloader,
    Attachments,
    AttachmentState,
    AttachmentUploader,
    DeviceRevoked,
    HttpTransport,
    TransportRequest,
    TransportResponse,
    WouldLoseWork,
)
from client_sdk.attachments import AttachmentChanged, BackgroundUploads
from tests.attachments.conftest import (
    REP1_CUSTOMER,
    REP2_CUSTOMER,
    SERVER_MAX_BYTES,
    Device,
    api,
    blob_files,
)
from tests.attachments.cutting_proxy import CuttingProxy
from tests.attachments.images import noise_png
from tests.support.server_proc import ServerProcess

pytestmark = pytest.mark.e2e

MIB = 1024 * 1024


def new_visit(device: Device, customer_id: str) -> str:
    """A visit logged on the device (offline: not pushed yet)."""
    device.client.sync()  # the device has its customers
    visit = device.store.collection("activities").insert(
        {
            "customer_id": customer_id,
            "type": "visit",
            "occurred_at": datetime.now(UTC).isoformat(),
            "subject": "Shelf check",
        }
    )
    return str(visit.id)


def test_20mb_over_a_connection_cut_every_megabyte_arrives_whole_and_is_stored_once(
    devices: Any, server: ServerProcess, blob_dir: Path, tmp_path: Path
) -> None:
    data = os.urandom(20 * MIB)
    digest = hashlib.sha256(data).hexdigest()
    video = tmp_path / "delivery.mp4"
    video.write_bytes(data)

    phone = devices("phone-a")
    attachments = Attachments(phone.store)
    info = attachments.add(
        "activities", new_visit(phone, REP1_CUSTOMER), video, "file", "video/mp4"
    )
    with CuttingProxy(server.host, server.port, cut_every=1 * MIB) as proxy:
        # max_attempts=1: every cut ends the run, so each run must resume by asking the
        # server which chunks it already holds.
        uploader = AttachmentUploader(
            attachments, phone.client, HttpTransport(proxy.url), max_attempts=1
        )
        runs = 0
        while attachments.status(info.id).state is not AttachmentState.COMPLETE:
            runs += 1
            assert runs < 200, "the upload does not make progress"
            uploader.upload_pending()
        cuts, sent = proxy.cuts, proxy.bytes_up
    assert cuts >= 19 and runs >= 19  # it really was cut every megabyte
    # Resumed where it stopped, never started over: a cut costs at most the chunk in flight.
    assert sent < len(data) + (cuts + 1) * (256 + 8) * 1024

    manager = api(server, "manager")
    listed = manager.get("/v1/attachments", params={"record_id": info.record_id}).json()
    assert [(a["id"], a["status"], a["sha256"]) for a in listed["attachments"]] == [
        (info.id, "complete", digest)
    ]
    body = manager.get(f"/v1/attachments/{info.id}/content").content
    assert hashlib.sha256(body).hexdigest() == digest and len(body) == len(data)
    stored = [p for p in blob_files(blob_dir) if p.name == digest]
    assert len(stored) == 1
    assert hashlib.sha256(stored[0].read_bytes()).hexdigest() == digest

    # The same file from a second device of another user: stored once, nothing re-sent.
    blobs_before = len(blob_files(blob_dir))
    other = devices("phone-b", user="rep2")
    other_attachments = Attachments(other.store)
    copy = other_attachments.add(
        "activities", new_visit(other, REP2_CUSTOMER), video, "file", "video/mp4"
    )
    report = AttachmentUploader(other_attachments, other.client).upload_pending()
    assert (report.deduplicated, report.completed, report.chunks_sent) == (1, 1, 0)
    assert other_attachments.status(copy.id).state is AttachmentState.COMPLETE
    assert len(blob_files(blob_dir)) == blobs_before
    assert len([p for p in blob_files(blob_dir) if p.name == digest]) == 1


def test_a_rep_cannot_reach_attachments_of_a_record_outside_their_scope(
    devices: Any, server: ServerProcess
) -> None:
    image = noise_png(seed=11)
    phone = devices("rep1-phone")
    visit_id = new_visit(phone, REP1_CUSTOMER)
    phone.client.sync()
    attachments = Attachments(phone.store)
    photo = attachments.add("activities", visit_id, image, "photo", "image/png")
    assert AttachmentUploader(attachments, phone.client).upload_pending().completed == 1

    rep2 = api(server, "rep2")
    attempts = {
        "content": rep2.get(f"/v1/attachments/{photo.id}/content"),
        "thumbnail": rep2.get(f"/v1/attachments/{photo.id}/thumbnail"),
        "metadata": rep2.get(f"/v1/attachments/{photo.id}"),
        "list": rep2.get("/v1/attachments", params={"record_id": visit_id}),
        "chunk": rep2.put(f"/v1/attachments/{photo.id}/chunks/0", content=b"x"),
        "register": rep2.post(
            "/v1/attachments",
            json={
                "id": str(uuid.uuid4()),
                "collection": "activities",
                "record_id": visit_id,
                "kind": "photo",
                "mime": "image/png",
                "size": len(image),
                "sha256": hashlib.sha256(image).hexdigest(),
                "chunk_size": 256 * 1024,
            },
        ),
    }
    for what, response in attempts.items():
        assert response.status_code == 403, what
        assert response.json()["error"]["code"] == "forbidden", what

    # The rules are the records' rules: the owner's other device and the manager may.
    tablet = devices("rep1-tablet")
    downloader = AttachmentDownloader(Attachments(tablet.store), tablet.client)
    [remote] = downloader.refresh(visit_id)
    assert (remote.state, remote.local) == (AttachmentState.REMOTE, False)
    assert downloader.fetch(photo.id) == image
    assert downloader.attachments.status(photo.id).local
    manager = api(server, "manager")
    assert manager.get(f"/v1/attachments/{photo.id}/content").content == image

    pil = pytest.importorskip("PIL.Image")
    thumb = downloader.thumbnail(photo.id, size=64)
    with pil.open(io.BytesIO(thumb)) as picture:
        assert picture.format == "JPEG" and max(picture.size) == 64


class GatedTransport(HttpTransport):
    """Holds the second chunk of an upload until the test lets it go."""

    def __init__(self, base_url: str) -> None:
        super().__init__(base_url)
        self.entered = threading.Event()
        self.release = threading.Event()

    def send(self, request: TransportRequest) -> TransportResponse:
        if request.method == "PUT" and request.path.endswith("/chunks/1"):
            self.entered.set()
            assert self.release.wait(60)
        return super().send(request)


def test_the_visit_syncs_while_its_photo_uploads_and_the_manager_sees_pending_then_complete(
    devices: Any, server: ServerProcess
) -> None:
    phone = devices("rep1-field")
    visit_id = new_visit(phone, REP1_CUSTOMER)
    attachments = Attachments(phone.store)
    photo = attachments.add(
        "activities",
        visit_id,
        os.urandom(3 * MIB),
        "photo",
        "image/jpeg",
        location={"lat": 31.2304, "lon": 121.4737},
    )
    gate = GatedTransport(server.url)
    uploader = AttachmentUploader(attachments, phone.client, gate)
    worker = threading.Thread(target=uploader.upload_pending)
    worker.start()
    try:
        assert gate.entered.wait(30)  # the upload is under way, stuck mid-photo
        report = phone.client.sync()  # ...and the visit syncs regardless
        assert report.pushed == 1 and report.applied == 1
        assert not phone.store.collection("activities").get(visit_id).pending
        assert attachments.status(photo.id).state is AttachmentState.UPLOADING

        boss = devices("manager-tablet", user="manager")
        boss.client.sync()
        assert boss.store.collection("activities").get(visit_id) is not None
        manager = api(server, "manager")
        [seen] = manager.get("/v1/attachments", params={"record_id": visit_id}).json()[
            "attachments"
        ]
        assert (seen["id"], seen["status"], seen["kind"]) == (photo.id, "pending", "photo")
        assert seen["received_chunks"] == [0] and seen["chunk_count"] == 12
        assert seen["location"]["lat"] == pytest.approx(31.2304)
    finally:
        gate.release.set()
        worker.join(60)
    assert attachments.status(photo.id).state is AttachmentState.COMPLETE
    [done] = manager.get("/v1/attachments", params={"record_id": visit_id}).json()["attachments"]
    assert (done["status"], done["received_bytes"]) == ("complete", 3 * MIB)


def test_the_server_refuses_what_is_too_large_with_413(devices: Any, server: ServerProcess) -> None:
    rep1 = api(server, "rep1")
    meta = {
        "collection": "activities",
        "record_id": "visit-too-big",
        "kind": "file",
        "mime": "video/mp4",
        "sha256": "0" * 64,
        "chunk_size": 256 * 1024,
    }
    too_big = rep1.post(
        "/v1/attachments", json={**meta, "id": "too-big", "size": SERVER_MAX_BYTES + 1}
    )
    assert too_big.status_code == 413
    assert too_big.json()["error"]["code"] == "payload_too_large"
    assert too_big.json()["error"]["details"]["max_bytes"] == SERVER_MAX_BYTES

    ok = rep1.post("/v1/attachments", json={**meta, "id": "fits", "size": 300 * 1024})
    assert ok.status_code == 201 and ok.json()["status"] == "pending"
    oversized_chunk = rep1.put("/v1/attachments/fits/chunks/0", content=b"x" * (256 * 1024 + 1))
    assert oversized_chunk.status_code == 413
    assert oversized_chunk.json()["error"]["code"] == "payload_too_large"

    # A device whose own limit is above the server's learns it as a failed attachment.
    phone = devices("rep1-big")
    attachments = Attachments(phone.store, max_bytes=SERVER_MAX_BYTES * 2)
    info = attachments.add(
        "activities", "visit-x", b"\0" * (SERVER_MAX_BYTES + 1), "file", "video/mp4"
    )
    report = AttachmentUploader(attachments, phone.client).upload_pending()
    assert (report.failed, report.chunks_sent) == (1, 0)
    failed = attachments.status(info.id)
    assert failed.state is AttachmentState.FAILED
    assert failed.error is not None and failed.error["code"] == "payload_too_large"


def test_background_uploads_report_progress_through_store_events(
    devices: Any, server: ServerProcess
) -> None:
    phone = devices("rep1-background")
    attachments = Attachments(phone.store, chunk_size=64 * 1024)
    seen: list[AttachmentChanged] = []
    finished = threading.Event()

    def listen(event: object) -> None:
        if isinstance(event, AttachmentChanged):
            seen.append(event)
            if event.state is AttachmentState.COMPLETE:
                finished.set()

    phone.store.subscribe(listen)
    photo = attachments.add("activities", "visit-bg", noise_png(seed=3), "photo", "image/png")
    with BackgroundUploads(AttachmentUploader(attachments, phone.client), interval_s=600) as bg:
        bg.trigger()
        assert finished.wait(30)
    states = [e.state for e in seen if e.id == photo.id]
    assert states[0] is AttachmentState.QUEUED and states[-1] is AttachmentState.COMPLETE
    assert AttachmentState.UPLOADING in states
    progress = [e.uploaded_bytes for e in seen if e.state is AttachmentState.UPLOADING]
    assert progress == sorted(progress) and len(set(progress)) >= 3


def test_an_upload_resumes_across_a_server_crash_without_resending_chunks(
    devices: Any, server: ServerProcess
) -> None:
    phone = devices("rep1-crash")
    attachments = Attachments(phone.store, chunk_size=64 * 1024)
    data = os.urandom(10 * 64 * 1024)
    photo = attachments.add("activities", "visit-crash", data, "photo", "image/jpeg")
    uploader = AttachmentUploader(attachments, phone.client)
    first = uploader.upload_pending(max_chunks=4)
    assert (first.chunks_sent, first.completed) == (4, 0)
    assert attachments.status(photo.id).state is AttachmentState.UPLOADING

    server.restart(kill=True)  # SIGKILL: staged chunks must be on disk

    second = AttachmentUploader(attachments, phone.client).upload_pending()
    assert (second.chunks_sent, second.completed) == (6, 1)
    assert attachments.status(photo.id).state is AttachmentState.COMPLETE
    rep1 = api(server, "rep1", device_id="raw-rep1-crash")
    assert rep1.get(f"/v1/attachments/{photo.id}/content").content == data


def test_an_expired_token_is_refreshed_and_a_revoked_device_loses_its_chunks(
    devices: Any, server: ServerProcess
) -> None:
    phone = devices("rep1-tokens")
    attachments = Attachments(phone.store)
    first = attachments.add("activities", "visit-t", b"first photo", "photo", "image/jpeg")
    tokens = phone.client._session.tokens()
    assert tokens is not None
    tokens["access_token"] = "not-a-valid-token"  # as if it had expired
    uploader = AttachmentUploader(attachments, phone.client)
    assert uploader.upload_pending().completed == 1
    assert attachments.status(first.id).state is AttachmentState.COMPLETE
    refreshed = phone.client._session.tokens()
    assert refreshed is not None and refreshed["access_token"] != "not-a-valid-token"

    attachments.add("activities", "visit-t", b"second photo", "photo", "image/jpeg")
    from tests.client_sdk.e2e_helpers import revoke

    revoke(server, phone.store.device_id)
    with pytest.raises(DeviceRevoked):
        uploader.upload_pending()
    assert not attachments.vault.directory.exists()
    assert phone.store.closed  # wiped, as the record sync would have done


def test_another_user_signing_in_on_the_phone_does_not_inherit_its_photos(
    devices: Any, server: ServerProcess
) -> None:
    phone = devices("shared-phone")
    attachments = Attachments(phone.store)
    mine = attachments.add("activities", "visit-s", b"rep1's photo", "photo", "image/jpeg")
    assert [a.id for a in attachments.list("visit-s")] == [mine.id]
    with pytest.raises(WouldLoseWork) as refused:
        phone.client.login("rep2", "fieldsync-demo")  # rep1's photo was never uploaded
    assert refused.value.work.unsent_photos == 1
    phone.client.login("rep2", "fieldsync-demo", force=True)
    assert attachments.list("visit-s") == []
    assert attachments.vault.ids() == set()
