"""Photos on a visit, without a window: attach (camera or file), per-photo upload status
driven by the SDK's real ``AttachmentChanged`` events, the size-limit message.

The upload tests run the SDK's real uploader against a real server process (SQLite,
attachments on disk, a 1 MiB server limit so a refusal can be provoked).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mobile_app.demo import DemoIds
from mobile_app.i18n import Translator
from mobile_app.viewmodels.account import sdk_attachments, sdk_backend, sdk_uploads, user_from_login
from mobile_app.viewmodels.base import Session
from mobile_app.viewmodels.photos import PhotosViewModel, attachments_of
from mobile_app.viewmodels.sync_bar import SyncBarViewModel
from mobile_app.viewmodels.visit import LogVisitViewModel
from tests.support.server_proc import ServerProcess

from .conftest import NOW

SERVER_MAX_BYTES = 1024 * 1024
REP1_CUSTOMER = "demo-cust-0000"  # owned by rep1 in the server's demo data
QUEUED = "Queued · waits for a connection"


def photo_file(folder: Path, name: str, size: int) -> Path:
    """A JPEG-named file of ``size`` random bytes (unique content: no deduplication)."""
    path = folder / name
    path.write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(size - 4))
    return path


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


# -- on the phone, offline -----------------------------------------------------------------
def test_a_photo_picked_on_the_visit_form_is_stored_encrypted_with_the_visit(
    session: Session, demo: DemoIds, tmp_path: Path
) -> None:
    path = photo_file(tmp_path, "shelf.jpg", 300_000)
    vm = LogVisitViewModel(session, demo.customers["张三"])
    vm.location_text = "31.2304, 121.4737"
    assert vm.add_photo(str(path)), vm.photo_error
    assert vm.photo_lines() == [("shelf.jpg", "293 KB · attaches when you save")]
    assert session.attachments is not None
    assert session.attachments.list("") == []  # nothing stored before the visit is saved
    assert vm.save(), vm.errors
    assert vm.activity_id is not None
    assert vm.message == "Visit logged with 1 photo(s); they upload in the background."
    [info] = session.attachments.list(vm.activity_id)
    assert info.id == vm.photo_ids[0]
    assert (info.kind, info.name, info.size) == ("photo", "shelf.jpg", 300_000)
    assert getattr(info, "collection", None) == "activities"
    assert getattr(info, "mime", None) == "image/jpeg"
    assert info.location == {"lat": 31.2304, "lon": 121.4737}
    assert info.captured_at == NOW.isoformat()
    assert session.attachments.open(info.id) == path.read_bytes()  # type: ignore[attr-defined]
    # encrypted on disk: no chunk file holds the photo's bytes
    chunks = list(Path(f"{tmp_path / 'store.db'}.attachments").rglob("*.chunk"))
    assert chunks and all(path.read_bytes()[:4096] not in c.read_bytes() for c in chunks)

    photos = PhotosViewModel(session, vm.activity_id)
    assert [(r.name, r.state, r.status) for r in photos.rows] == [("shelf.jpg", "queued", QUEUED)]
    photos.close()
    bar = SyncBarViewModel(session)  # what has not reached the office includes the photo
    bar.refresh()
    pending = session.store.status().pending_total
    assert bar.photos == 1 and f"{pending} unsent + 1 photo(s)" in bar.summary
    bar.close()


def test_a_photo_attached_later_on_the_visit_takes_its_check_in_location(
    session: Session, demo: DemoIds, tmp_path: Path
) -> None:
    visit = LogVisitViewModel(session, demo.customers["李四"])
    visit.location_text = "39.9042, 116.4074"
    assert visit.save()
    assert visit.activity_id is not None
    photos = PhotosViewModel(session, visit.activity_id)
    heard: list[list[str]] = []
    photos.subscribe(lambda: heard.append([r.status for r in photos.rows]))
    assert photos.rows == []
    assert photos.attach(str(photo_file(tmp_path, "card.png", 2048)))
    assert heard[-1] == [QUEUED]  # the SDK's AttachmentChanged reached the view-model
    [info] = attachments_of(session).list(visit.activity_id)  # type: ignore[union-attr]
    assert info.location == {"lat": 39.9042, "lon": 116.4074}
    assert getattr(info, "mime", None) == "image/png"
    photos.close()


def test_a_photo_over_the_size_limit_is_refused_with_a_message_in_both_languages(
    session: Session, demo: DemoIds, tmp_path: Path
) -> None:
    session.attachments = sdk_attachments(session.store, max_bytes=2048)
    big = str(photo_file(tmp_path, "huge.jpg", 5 * 1024))
    vm = LogVisitViewModel(session, demo.customers["张三"])
    assert not vm.add_photo(big)
    assert vm.photo_error == (
        "This photo is 5 KB; photos are limited to 2 KB. Choose a smaller one."
    )
    assert vm.photos == []
    session.tr.set_language("zh")
    assert not vm.add_photo(big)
    assert vm.photo_error == "这张照片有 5 KB，超过了 2 KB 的上限，请选择更小的照片。"
    session.tr.set_language("en")
    assert vm.save() and vm.activity_id is not None
    photos = PhotosViewModel(session, vm.activity_id)
    assert not photos.attach(big)
    assert photos.error.startswith("This photo is 5 KB")
    assert session.attachments.list(vm.activity_id) == []  # nothing stored
    assert photos.attach(str(photo_file(tmp_path, "small.jpg", 1024)))
    photos.close()


def test_only_existing_photo_files_are_accepted(
    session: Session, demo: DemoIds, tmp_path: Path
) -> None:
    vm = LogVisitViewModel(session, demo.customers["张三"])
    assert not vm.add_photo(str(tmp_path / "gone.jpg"))
    assert vm.photo_error == f"No file at {tmp_path / 'gone.jpg'}"
    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo")
    assert not vm.add_photo(str(notes))
    assert vm.photo_error == "notes.txt is not a photo (JPEG, PNG, HEIC, WebP)"
    assert vm.add_photo(str(photo_file(tmp_path, "IMG_0042.JPG", 100)))
    vm.remove_photo(0)
    assert vm.photos == []


# -- uploads against a real server ---------------------------------------------------------
@pytest.fixture(scope="module")
def photo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("photo-server")
    env = {
        "FIELDSYNC_ATTACHMENTS_DIR": str(root / "blobs"),
        "FIELDSYNC_ATTACHMENTS_MAX_BYTES": str(SERVER_MAX_BYTES),
        "FIELDSYNC_ATTACHMENTS_FSYNC": "false",
    }
    with ServerProcess(
        f"sqlite:///{root / 'fieldsync.db'}", env=env, seed_demo=True, demo_customers=4
    ) as server:
        yield server


@pytest.fixture
def online(tmp_path: Path, photo_server: ServerProcess) -> Iterator[Session]:
    """A phone signed in as rep1 on the real server."""
    backend = sdk_backend("photo phone", fast_kdf=True, max_attempts=2)
    store = backend.open_store(tmp_path / "phone.db", "phone-passphrase")
    client = backend.make_client(store, photo_server.url)
    user = user_from_login(client.login("rep1", "fieldsync-demo"), "rep1")
    session = Session(store=store, user=user, tr=Translator("en"), client=client)
    yield session
    with contextlib.suppress(Exception):
        store.close()


def manager_view(server: ServerProcess, record_id: str) -> list[dict[str, Any]]:
    token = server.login("manager", "fieldsync-demo", device_id="mgr-photos")["access_token"]
    response = httpx.get(
        f"{server.url}/v1/attachments",
        params={"record_id": record_id},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return list(response.json()["attachments"])


def test_status_goes_queued_uploading_uploaded_while_the_visit_syncs_first(
    online: Session, photo_server: ServerProcess, tmp_path: Path
) -> None:
    size = 600_000  # three 256 KiB chunks
    visit = LogVisitViewModel(online, REP1_CUSTOMER)
    visit.notes = "货架照片"
    assert visit.add_photo(str(photo_file(tmp_path, "shelf.jpg", size)))
    assert visit.save() and visit.activity_id is not None
    photos = PhotosViewModel(online, visit.activity_id)
    seen: list[str] = [photos.rows[0].status]
    photos.subscribe(lambda: seen.append(photos.rows[0].status))

    # the record sync carries the visit while the photo is still queued on the phone
    assert online.client is not None
    online.client.sync()
    bar = SyncBarViewModel(online)
    bar.refresh()
    assert bar.pending == 0 and photos.rows[0].state == "queued"
    assert manager_view(photo_server, visit.activity_id) == []
    bar.close()

    # online: the metadata goes first, so the manager sees the photo pending on the visit
    from client_sdk import SyncClient
    from client_sdk.attachments import Attachments, AttachmentUploader

    assert isinstance(online.attachments, Attachments) and isinstance(online.client, SyncClient)
    assert AttachmentUploader(online.attachments, online.client).register_pending() == 1
    [server_copy] = manager_view(photo_server, visit.activity_id)
    assert server_copy["status"] == "pending"
    assert photos.rows[0].status == "Uploading 0%"

    # the app's upload runner (SDK BackgroundUploads on its own thread) sends the bytes
    uploads = sdk_uploads(online.attachments, online.client, interval_s=3600)
    assert uploads is not None
    uploads.start()
    try:
        wait_for(lambda: photos.rows[0].state == "complete")
    finally:
        uploads.stop()
    bar = SyncBarViewModel(online)
    bar.refresh()
    assert bar.photos == 0 and "photo" not in bar.summary
    bar.close()
    distinct = [s for i, s in enumerate(seen) if i == 0 or s != seen[i - 1]]
    assert distinct == [
        QUEUED,
        "Uploading 0%",
        "Uploading 43%",
        "Uploading 87%",
        "Uploading 100%",
        "Uploaded",
    ]
    [server_copy] = manager_view(photo_server, visit.activity_id)
    assert server_copy["status"] == "complete" and server_copy["size"] == size
    assert server_copy["kind"] == "photo" and server_copy["name"] == "shelf.jpg"
    photos.close()


def test_a_photo_the_server_refuses_shows_the_reason_and_can_be_retried(
    online: Session, tmp_path: Path
) -> None:
    from client_sdk import SyncClient
    from client_sdk.attachments import Attachments, AttachmentUploader

    visit = LogVisitViewModel(online, REP1_CUSTOMER)
    assert visit.save() and visit.activity_id is not None
    photos = PhotosViewModel(online, visit.activity_id)
    # within the phone's limit (20 MB), over the server's (1 MiB)
    assert photos.attach(str(photo_file(tmp_path, "pano.jpg", SERVER_MAX_BYTES + 500_000)))
    attachments, client = online.attachments, online.client
    assert isinstance(attachments, Attachments) and isinstance(client, SyncClient)
    report = AttachmentUploader(attachments, client).upload_pending()
    assert report.failed == 1
    [row] = photos.rows
    assert row.state == "failed" and row.can_retry
    assert row.status == "Failed: the server accepts photos up to 1.0 MB"
    photos.retry(row.id)
    assert photos.message == "Queued again."
    assert [(r.state, r.status) for r in photos.rows] == [("queued", QUEUED)]
    photos.close()


@pytest.mark.app
def test_the_app_uploads_a_photo_attached_on_the_visit_screen_beside_record_sync(
    kivy_app: Any, online: Session, photo_server: ServerProcess, tmp_path: Path
) -> None:
    """The whole app: its sync runner starts the upload runner, attaching triggers it."""
    controller = kivy_app.controller
    controller.tr.set_language("en")
    online.tr = controller.tr
    visit = LogVisitViewModel(online, REP1_CUSTOMER)
    assert visit.save() and visit.activity_id is not None
    controller.begin_session(online, background_sync=True)
    try:
        assert controller.uploads is not None
        controller.wait_for_sync()
        screen = controller.go("visit", activity_id=visit.activity_id)
        kivy_app.pump(2)
        kivy_app.type(screen.picker.path_input, str(photo_file(tmp_path, "door.jpg", 70_000)))
        kivy_app.tap(screen.picker.attach_button)
        kivy_app.wait_until(
            lambda: kivy_app.items(screen.photo_box)[0].subtitle.startswith("Uploaded")
        )
        [server_copy] = manager_view(photo_server, visit.activity_id)
        assert server_copy["status"] == "complete" and server_copy["name"] == "door.jpg"
        assert online.store.status().pending_total == 0  # the visit went with the record sync
    finally:
        controller.end_session(navigate=False)
        kivy_app.pump(1)
