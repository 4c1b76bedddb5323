"""The real screens in an offscreen window, driven by taps and typing (one shared App)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from client_sdk.testing import FakeServer
from mobile_app.demo import build_demo

from .conftest import NOW, AppDriver

pytestmark = pytest.mark.app


@pytest.fixture
def app(kivy_app: AppDriver) -> Any:
    kivy_app.controller.tr.set_language("en")
    yield kivy_app
    kivy_app.end()


@pytest.fixture
def demo_world(tmp_path: Path) -> Any:
    world = build_demo(tmp_path / "w", NOW.astimezone().date(), language="en")
    return world  # begin() gives its session the app's translator


def begin(app: AppDriver, world: Any) -> None:
    world.session.tr = app.controller.tr
    app.begin(world)


def test_first_run_signs_in_and_runs_the_initial_sync(app: AppDriver, tmp_path: Path) -> None:
    server = FakeServer(users={"rep1": "fieldsync-demo"})
    server.put("customers", "c-zs", {"name": "张三", "status": "intent"})
    server.put("customers", "c-ls", {"name": "李四", "status": "potential"})
    app.backend_state["server"] = server
    app.controller.files.forget()
    app.controller.start()
    app.pump(2)
    screen = app.screen
    assert screen.name == "first_run"
    app.type(screen.fields["username"].input, "rep1")
    app.type(screen.fields["password"].input, "wrong")
    app.type(screen.fields["passphrase"].input, "local-secret")
    app.type(screen.fields["passphrase_again"].input, "local-secret")
    app.tap(screen.submit_button)
    app.wait_until(lambda: not screen.vm.busy and screen.error_label.text)
    assert screen.error_label.text == "Wrong username or password."
    assert app.screen.name == "first_run"

    screen.fields["password"].input.text = ""
    app.type(screen.fields["password"].input, "fieldsync-demo")
    app.tap(screen.submit_button)
    app.wait_until(lambda: app.screen.name == "initial_sync")
    sync_screen = app.screen
    app.wait_until(lambda: not sync_screen.continue_button.disabled)
    assert sync_screen.bar.value == 1.0
    assert "Ready" in sync_screen.message.text
    app.tap(sync_screen.continue_button)
    assert app.screen.name == "today"
    assert app.controller.session.store.collection("customers").count() == 2
    app.controller.wait_for_sync()

    # the next start asks only for the passphrase
    app.controller.end_session()
    app.pump(2)
    unlock = app.screen
    assert unlock.name == "unlock"
    app.type(unlock.passphrase.input, "not-my-passphrase")
    app.tap(unlock.submit_button)
    assert app.screen is unlock and unlock.passphrase.error.text == "Wrong passphrase."
    app.type(unlock.passphrase.input, "local-secret")
    app.tap(unlock.submit_button)
    assert app.screen.name == "today"
    assert app.controller.session.store.collection("customers").count() == 2
    app.controller.wait_for_sync()


def test_search_finds_chinese_names_by_pinyin(app: AppDriver, demo_world: Any) -> None:
    begin(app, demo_world)
    app.tap(app.screen.nav_buttons["customers"])
    screen = app.screen
    assert screen.name == "customers"
    assert len(app.items()) == 12
    app.type(screen.search, "zs")
    assert [i.title for i in app.items()] == ["张三"]
    screen.search.text = ""
    app.pump(2)
    app.type(screen.search, "oynn")
    assert [i.title for i in app.items()] == ["欧阳娜娜"]
    app.tap(app.items()[0])
    assert app.screen.name == "customer_detail"
    assert app.screen.title_label.text == "欧阳娜娜"


def test_create_customer_shows_validation_error_then_saves(app: AppDriver, demo_world: Any) -> None:
    begin(app, demo_world)
    app.controller.go("customers", reset=True)
    app.pump(2)
    app.tap(app.screen.action_button)
    form = app.screen
    assert form.name == "customer_form"
    app.type(form.inputs["company"].input, "苏州新客户")
    app.tap(form.save_button)
    assert app.screen is form
    assert form.inputs["name"].error.text == "Name is required"
    assert form.inputs["name"].input.has_error
    app.type(form.inputs["name"].input, "孙七")
    app.tap(form.save_button)
    assert app.screen.name == "customer_detail"
    assert app.screen.title_label.text == "孙七"
    store = app.controller.session.store
    [record] = store.collection("customers").query(where={"name": "孙七"})
    assert record.fields["company"] == "苏州新客户" and record.pending
    assert "4 unsent" in app.screen.sync_bar.summary


def test_log_visit_from_the_customer_screen(app: AppDriver, demo_world: Any) -> None:
    begin(app, demo_world)
    customer = demo_world.ids.customers["李四"]
    app.controller.go("customer_detail", customer_id=customer)
    app.pump(2)
    app.tap(lambda: app.screen.action_buttons["Log a visit"])
    screen = app.screen
    assert screen.name == "log_visit"
    app.tap(screen.locate_button)
    assert "type the location" in screen.location_note.text  # no GPS on this machine
    app.type(screen.inputs["check_in"].input, "31.2304, 121.4737")
    app.type(screen.inputs["notes"].input, "带了样品，客户很满意")
    app.tap(screen.inputs["next_follow_up"].button)  # a calendar, not typed text
    from mobile_app.ui import dialogs

    app.tap(dialogs.current["days"][20])
    assert screen.inputs["next_follow_up"].button.text == "2026-03-20"
    app.tap(screen.save_button)
    assert app.screen.name == "customer_detail"
    store = app.controller.session.store
    visits = store.collection("activities").query(where={"customer_id": customer, "type": "visit"})
    assert [v.fields["notes"] for v in visits] == ["带了样品，客户很满意"]
    assert visits[0].fields["check_in"] == {"lat": 31.2304, "lon": 121.4737}
    tasks = store.collection("tasks").query(where={"activity_id": visits[0].id})
    assert len(tasks) == 1
    assert any("带了样品" in i.subtitle for i in app.items())


def test_move_an_opportunity_stage(app: AppDriver, demo_world: Any) -> None:
    begin(app, demo_world)
    app.tap(app.screen.nav_buttons["pipeline"])
    assert app.screen.name == "pipeline"
    deal_item = next(i for i in app.items() if i.title == "研发服务器扩容")
    app.tap(deal_item)
    screen = app.screen
    assert screen.name == "deal"
    ids = demo_world.ids
    assert screen.stage_buttons[ids.stages["Proposal"]].selected
    app.tap(screen.stage_buttons[ids.stages["Negotiation"]])
    assert screen.stage_buttons[ids.stages["Negotiation"]].selected
    store = app.controller.session.store
    opp = store.collection("opportunities").get(ids.opportunities["研发服务器扩容"])
    assert opp.fields["stage_id"] == ids.stages["Negotiation"]
    [change] = store.collection("stage_changes").query(where={"opportunity_id": opp.id})
    assert change.fields["from_stage_id"] == ids.stages["Proposal"]
    screen.inputs["amount"].input.text = ""
    app.type(screen.inputs["amount"].input, "300000")
    app.tap(screen.save_button)
    assert store.collection("opportunities").get(opp.id).fields["amount"] == 300000


def test_resolve_a_conflict_from_the_sync_bar_badge(app: AppDriver, demo_world: Any) -> None:
    begin(app, demo_world)
    bar = app.screen.sync_bar
    assert bar.badge_text == "3 to check"
    app.tap(bar.ids.badge)
    screen = app.screen
    assert screen.name == "conflicts"
    assert len(screen.cards) == 2
    rows = {r.field: r for r in screen.vm.rows}
    app.tap(screen.cards[rows["amount"].id]["theirs"])
    assert len(screen.cards) == 1
    card = screen.cards[rows["ends_on"].id]
    app.type(card["input"], "2026-12-31")
    app.tap(card["use"])
    assert screen.cards == {}
    store = app.controller.session.store
    contract = store.collection("contracts").get(demo_world.conflict_contract)
    assert contract.fields["amount"] == 90000 and contract.fields["ends_on"] == "2026-12-31"
    assert store.status().open_conflicts == 0
    assert app.screen.sync_bar.badge_text == "1 to check"  # the rejected write remains


def test_language_switch_in_settings_relabels_the_screen(app: AppDriver, demo_world: Any) -> None:
    begin(app, demo_world)
    app.tap(app.screen.nav_buttons["more"])
    app.tap(app.screen.entries["settings"])
    screen = app.screen
    assert screen.title_label.text == "Settings"
    app.tap(screen.language_buttons["zh"])
    assert screen.title_label.text == "设置"
    assert screen.nav_buttons["customers"].text.endswith("\n客户")
    assert "在线" in screen.sync_bar.summary
    app.tap(screen.language_buttons["en"])
    assert screen.title_label.text == "Settings"


def _pixels(text: str, font_name: str | None = None) -> tuple[tuple[int, int], bytes]:
    from kivy.uix.label import Label

    kw: dict[str, Any] = {"text": text, "font_size": 48}
    if font_name:
        kw["font_name"] = font_name
    label = Label(**kw)
    label.texture_update()
    return tuple(label.texture.size), bytes(label.texture.pixels)  # type: ignore[return-value]


def test_chinese_names_render_as_real_glyphs(app: AppDriver) -> None:
    from kivy.core.text import DEFAULT_FONT, LabelBase

    from mobile_app.ui.fonts import BUNDLED

    assert LabelBase._fonts[DEFAULT_FONT][0] == str(BUNDLED)
    zhang = _pixels("张三")
    li = _pixels("李四")
    assert any(zhang[1][3::4]), "nothing drawn"
    assert zhang[0] == li[0] and zhang[1] != li[1], "different names must draw differently"
    # Roboto, Kivy's own font, has no CJK glyphs: it draws the same boxes for both names
    import os

    from kivy import kivy_data_dir

    roboto = os.path.join(kivy_data_dir, "fonts", "Roboto-Regular.ttf")
    tofu_zhang = _pixels("张三", roboto)
    tofu_li = _pixels("李四", roboto)
    assert tofu_zhang == tofu_li, "control: missing glyphs all look alike"
    assert zhang != tofu_zhang
    # and the customer list draws the name with the CJK font too
    assert _pixels("张三")[1] != _pixels("张四")[1]


def _png_is_not_blank(path: Path) -> bool:
    """Decode an 8-bit RGB(A) PNG (no Pillow here) and look for real content."""
    import struct
    import zlib

    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, channels = 8, b"", 0, 0, 4
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        chunk = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", chunk[:10])
            assert depth == 8
            channels = {2: 3, 6: 4}[color]
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    prev = bytearray(stride)
    colours: set[bytes] = set()
    for row in range(height):
        f = raw[row * (stride + 1)]
        line = bytearray(raw[row * (stride + 1) + 1 : (row + 1) * (stride + 1)])
        # Filter 0 ("None", what Kivy's screenshots use on every row) stores the bytes as
        # they are: skip the per-byte loop (0.25 s per screenshot in Python).
        for i in range(stride) if f != 0 else ():
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if f == 1:
                line[i] = (line[i] + a) & 0xFF
            elif f == 2:
                line[i] = (line[i] + b) & 0xFF
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + pred) & 0xFF
        if row % 8 == 0:
            colours.update(bytes(line[i : i + 3]) for i in range(0, stride, channels * 4))
        prev = line
    return len(colours) > 20


def test_screenshot_command_renders_every_screen(tmp_path: Path) -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "shots"
    result = subprocess.run(
        [sys.executable, "-m", "mobile_app.screenshots", str(out)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    from mobile_app.ui.screens import ALL_SCREENS

    expected = {s.screen_name for s in ALL_SCREENS}
    for language in ("zh", "en"):
        written = {p.stem for p in (out / language).glob("*.png")}
        assert expected <= written, (language, expected - written)
    zh = {p.name for p in (out / "zh").glob("*.png")}
    assert zh == {p.name for p in (out / "en").glob("*.png")}
    for path in sorted(out.glob("*/*.png")):
        assert _png_is_not_blank(path), f"{path} is blank"
        assert path.read_bytes()[16:24] == (360).to_bytes(4, "big") + (640).to_bytes(4, "big")


def test_every_symbol_the_screens_use_has_a_glyph_in_the_font(app: AppDriver) -> None:
    """✓ ★ ↑ × ‹ … must not draw as the font's missing-glyph box (U+E000 is unassigned)."""
    missing = _pixels("\ue000")
    for symbol in ("✓", "★", "↑", "×", "‹", "…", "·", "¥"):
        assert _pixels(symbol) != missing, f"{symbol!r} has no glyph"


def test_font_falls_back_to_a_system_cjk_font_when_the_bundled_one_is_missing(
    app: AppDriver, tmp_path: Path
) -> None:
    from mobile_app.ui.fonts import SYSTEM_CANDIDATES, find_cjk_font

    system = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"  # fonts-wqy-microhei
    assert find_cjk_font(tmp_path / "gone.ttc") == system
    assert find_cjk_font(tmp_path / "gone.ttc", (str(tmp_path / "none.ttf"),)) is None
    assert system in SYSTEM_CANDIDATES


def test_fix_and_retry_a_rejected_write(app: AppDriver, demo_world: Any) -> None:
    begin(app, demo_world)
    app.controller.go("rejected")
    app.pump(2)
    screen = app.screen
    [card] = screen.cards.values()
    name = card["inputs"]["name"]
    assert name.error.text == "Name is too long"
    name.input.text = ""
    app.type(name.input, "Pacific Rim Imports")
    app.tap(card["retry"])
    app.controller.wait_for_sync()
    app.pump(3)
    assert screen.cards == {}
    store = app.controller.session.store
    assert store.status().dead_letters == 0
    server_copy = demo_world.server.fields("customers", demo_world.rejected_customer)
    assert server_copy is not None and server_copy["name"] == "Pacific Rim Imports"


def test_attach_a_photo_to_a_visit_and_see_its_upload_status(
    app: AppDriver, demo_world: Any, tmp_path: Path
) -> None:
    import threading

    from client_sdk.attachments import AttachmentState

    photo = tmp_path / "shelf.jpg"
    photo.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40)
    begin(app, demo_world)
    customer = demo_world.ids.customers["李四"]
    app.controller.go("customer_detail", customer_id=customer)
    app.pump(2)
    app.tap(lambda: app.screen.action_buttons["Log a visit"])
    form = app.screen
    assert form.name == "log_visit"
    app.type(form.inputs["check_in"].input, "31.2304, 121.4737")
    app.type(form.inputs["notes"].input, "货架照片")
    assert form.picker.camera_button is None  # no plyer camera on a desktop
    app.type(form.picker.path_input, str(tmp_path / "missing.jpg"))
    app.tap(form.picker.attach_button)
    assert form.photo_error.text.startswith("No file at")
    app.type(form.picker.path_input, str(photo))
    app.tap(form.picker.attach_button)
    [staged] = app.items(form.photo_box)
    assert staged.title == "shelf.jpg" and "attaches when you save" in staged.subtitle
    assert form.photo_error.text == ""
    app.tap(form.save_button)

    screen = app.screen
    assert screen.name == "visit"
    [row] = app.items(screen.photo_box)
    assert row.title == "shelf.jpg"
    assert row.subtitle.startswith("Queued · waits for a connection")
    attachments = app.controller.session.attachments
    [info] = attachments.list(screen.vm.record_id)
    assert info.location == {"lat": 31.2304, "lon": 121.4737}
    assert attachments.open(info.id) == photo.read_bytes()

    # progress arrives as AttachmentChanged events from another thread (the uploader's)
    def move(**changes: Any) -> None:
        thread = threading.Thread(target=lambda: attachments.update(info.id, **changes))
        thread.start()
        thread.join()

    move(state=AttachmentState.UPLOADING, uploaded_bytes=info.size // 2)
    app.wait_until(lambda: app.items(screen.photo_box)[0].subtitle.startswith("Uploading 50%"))
    move(
        state=AttachmentState.FAILED,
        error={"code": "payload_too_large", "message": "", "details": {"max_bytes": 4096}},
    )
    app.wait_until(lambda: info.id in screen.retry_buttons)
    assert app.items(screen.photo_box)[0].subtitle.startswith(
        "Failed: the server accepts photos up to 4 KB"
    )
    app.tap(screen.retry_buttons[info.id])
    assert app.items(screen.photo_box)[0].subtitle.startswith("Queued")
    assert attachments.status(info.id).state == "queued"

    assert "unsent + 1 photo(s)" in screen.sync_bar.summary

    # a second photo through the file chooser (filtered to images)
    from kivy.uix.filechooser import FileChooserListView

    card = tmp_path / "card.PNG"
    card.write_bytes(b"\x89PNG" + bytes(500))
    app.tap(screen.picker.choose_button)
    popup = screen.picker.popup
    chooser = next(w for w in popup.walk() if isinstance(w, FileChooserListView))
    assert "*.jpg" in chooser.filters and "*.PNG" in chooser.filters
    chooser.path = str(tmp_path)
    chooser.selection = [str(card)]
    attach = next(w for w in popup.walk() if getattr(w, "text", "") == "Attach")
    app.tap(attach)
    assert [i.title for i in app.items(screen.photo_box)] == ["shelf.jpg", "card.PNG"]

    # the customer's timeline counts the photos; tapping the visit opens it again
    app.tap(screen.back_button)
    assert app.screen.name == "customer_detail"
    line = next(i for i in app.items() if "货架照片" in i.subtitle)
    assert "2 photo(s)" in line.subtitle
    app.tap(line)
    assert app.screen.name == "visit"
    assert [i.title for i in app.items(app.screen.photo_box)] == ["shelf.jpg", "card.PNG"]


def test_a_sync_builds_the_search_index_off_the_ui_thread(
    app: AppDriver, demo_world: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a sync the app builds the search indexes (``store.preload()``) on a thread
    of their own, so the rep's first search does not pause to build them — and neither
    the UI thread nor a sign-out (which waits for the sync thread) waits for it."""
    import threading

    from client_sdk import Store

    threads: list[str] = []
    real_preload = Store.preload

    def preload(store: Store, collections: Any = None) -> None:
        threads.append(threading.current_thread().name)
        real_preload(store, collections)

    monkeypatch.setattr(Store, "preload", preload)
    begin(app, demo_world)
    app.controller.wait_for_sync()
    store = app.controller.session.store
    store._core.views.drop()  # as after a resync: no index until the next preload
    threads.clear()
    app.controller.sync_now()
    app.controller.wait_for_sync()
    app.controller.wait_for_index()
    assert threads == ["fieldsync-index"]  # neither the UI thread nor the sync thread
    assert all(store._core.views.indexed(name) for name in ("customers", "contacts", "tasks"))

    # signing out (which waits for the sync thread) does not wait for an index build
    release = threading.Event()
    monkeypatch.setattr(Store, "preload", lambda store, collections=None: release.wait(10))
    app.controller.sync_now()
    app.controller.wait_for_sync()
    index_thread = app.controller._index_thread
    assert index_thread is not None and index_thread.is_alive()
    app.controller.end_session()
    assert index_thread.is_alive()  # end_session came back while the build still ran
    release.set()
    index_thread.join(10)
