"""``python -m mobile_app.screenshots DIR`` — every screen, rendered from demo data.

Builds a demo store (Chinese and English customers, synced with the SDK's in-process
fake server, holding two conflicts, a rejected write and an unsent visit), opens the real
screens in a 360×640 window (offscreen when there is no display) and writes
``DIR/<screen>.png``. No server is needed.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

WIDTH, HEIGHT = 360, 640


def _headless_environment() -> None:
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
    os.environ.setdefault("KIVY_NO_FILELOG", "1")
    os.environ.setdefault("KIVY_HOME", tempfile.mkdtemp(prefix="fieldsync-kivy-"))
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")


def pump(frames: int = 3) -> None:
    """Let Kivy lay out and draw (a few main-loop iterations)."""
    from kivy.base import EventLoop

    for _ in range(frames):
        EventLoop.idle()


def render_all(out_dir: Path, *, today: date | None = None) -> list[Path]:
    """Render every screen into ``out_dir``; the PNG paths written."""
    _headless_environment()
    from kivy.config import Config

    Config.set("graphics", "width", str(WIDTH))
    Config.set("graphics", "height", str(HEIGHT))
    Config.set("graphics", "resizable", "0")
    from kivy.base import EventLoop
    from kivy.core.window import Window

    from mobile_app.demo import build_demo, demo_photos
    from mobile_app.i18n import Translator
    from mobile_app.ui import prepare
    from mobile_app.ui.controller import AppController
    from mobile_app.viewmodels.account import (
        Account,
        AccountFiles,
        InitialSyncViewModel,
        sdk_backend,
    )

    prepare()
    EventLoop.ensure_window()
    Window.size = (WIDTH, HEIGHT)
    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="fieldsync-shots-"))
    day = today or date.today()
    world = build_demo(work / "store", day, language="zh")
    session = world.session
    tr: Translator = session.tr
    files = AccountFiles(work / "account")
    controller = AppController(sdk_backend(fast_kdf=True), files, tr, auto_sync_s=None)
    controller.default_server_url = "https://crm.example.com"
    Window.add_widget(controller.sm)
    written: list[Path] = []

    def shot(name: str, prepare_screen: Callable[[], Any] | None = None) -> None:
        if prepare_screen is not None:
            prepare_screen()
        pump(4)
        path = out_dir / f"{name}.png"
        controller.sm.export_to_png(str(path))
        written.append(path)

    # before sign-in
    controller.go("first_run", reset=True)
    shot("first_run")
    files.save(
        Account(server_url="https://crm.example.com", username="rep1", display_name="王小明")
    )
    controller.go("unlock", reset=True)
    shot("unlock")

    # signed in
    controller.begin_session(session, background_sync=False)

    def initial() -> None:
        vm = InitialSyncViewModel(session)
        vm.received, vm.total = 340, 1000
        vm.message = tr("initial.progress", done=340, total=1000)
        screen = controller.go("initial_sync", reset=True, run=False)
        screen.vm = vm  # type: ignore[attr-defined]
        screen.update()  # type: ignore[attr-defined]

    shot("initial_sync", initial)
    shot("today", lambda: controller.go("today", reset=True))
    shot("customers", lambda: controller.go("customers", reset=True))

    def search() -> None:
        screen: Any = controller.go("customers", reset=True)
        screen.search.text = "zs"

    shot("customers_search_pinyin", search)

    def clear_search() -> None:
        screen: Any = controller.screens["customers"]
        screen.search.text = ""

    clear_search()
    customer = world.ids.customers["张三"]
    shot("customer_detail", lambda: controller.go("customer_detail", customer_id=customer))

    def form_errors() -> None:
        screen: Any = controller.go("customer_form")
        screen.inputs["name"].input.text = ""
        screen.inputs["email"].input.text = "zhang@"
        screen.save()
        screen.scroll.scroll_y = 1

    shot("customer_form", form_errors)

    def log_visit() -> None:
        screen: Any = controller.go("log_visit", customer_id=customer)
        photo = work / "IMG_0043.jpg"
        photo.write_bytes(b"\xff\xd8\xff\xe0" + bytes(2_000_000))
        screen.vm.location_text = "31.230416, 121.473701"
        screen.vm.notes = "新品上架，拍摄货架陈列。"
        screen.vm.add_photo(str(photo))
        screen.render()
        screen.scroll.scroll_y = 0.25

    shot("log_visit", log_visit)
    visit_id = world.pending_visit
    demo_photos(session, visit_id, work / "photos")
    shot("visit", lambda: controller.go("visit", activity_id=visit_id))
    shot("pipeline", lambda: controller.go("pipeline", reset=True))
    deal = world.ids.opportunities["年度办公设备采购"]
    shot("deal", lambda: controller.go("deal", opportunity_id=deal))
    shot("tickets", lambda: controller.go("tickets", reset=True))
    ticket = world.ids.tickets["礼盒包装破损"]
    shot("ticket_detail", lambda: controller.go("ticket_detail", ticket_id=ticket))
    shot("ticket_form", lambda: controller.go("ticket_form", customer_id=customer))
    shot("conflicts", lambda: controller.go("conflicts", reset=True))
    shot("rejected", lambda: controller.go("rejected", reset=True))
    shot("settings", lambda: controller.go("settings", reset=True))

    # the same day in English
    tr.set_language("en")
    shot("today_en", lambda: controller.go("today", reset=True))
    shot("customers_en", lambda: controller.go("customers", reset=True))
    shot("customer_detail_en", lambda: controller.go("customer_detail", customer_id=customer))
    tr.set_language("zh")

    controller.end_session(navigate=False)
    Window.remove_widget(controller.sm)
    return written


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0]) if args else Path("docs/screenshots")
    for path in render_all(out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
