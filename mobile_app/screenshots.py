"""``python -m mobile_app.screenshots DIR`` — every screen, in Chinese and English.

Builds a demo store (Chinese and English customers, leads, products, articles and a
target, synced with the SDK's in-process fake server, holding two conflicts, a rejected
write and an unsent visit), opens the real screens in a 360×640 window (offscreen when
there is no display) and writes ``DIR/zh/<scene>.png`` and ``DIR/en/<scene>.png``
(scenes: :mod:`mobile_app.screenshot_scenes`). No server is needed.
"""

from __future__ import annotations

import os
import sys
import tempfile
from datetime import date
from pathlib import Path

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
    """Render every screen in both languages into ``out_dir``; the PNG paths written."""
    _headless_environment()
    from kivy.config import Config

    Config.set("graphics", "width", str(WIDTH))
    Config.set("graphics", "height", str(HEIGHT))
    Config.set("graphics", "resizable", "0")
    from kivy.base import EventLoop
    from kivy.core.window import Window

    from mobile_app.demo import build_demo
    from mobile_app.screenshot_scenes import scenes
    from mobile_app.ui import prepare
    from mobile_app.ui.controller import AppController
    from mobile_app.viewmodels.account import AccountFiles, sdk_backend
    from mobile_app.viewmodels.links import RecordingLauncher

    prepare()
    EventLoop.ensure_window()
    Window.size = (WIDTH, HEIGHT)
    work = Path(tempfile.mkdtemp(prefix="fieldsync-shots-"))
    world = build_demo(work / "store", today or date.today(), language="zh")
    files = AccountFiles(work / "account")
    controller = AppController(
        sdk_backend(fast_kdf=True),
        files,
        world.session.tr,
        auto_sync_s=None,
        launcher=RecordingLauncher(),
    )
    controller.default_server_url = "https://crm.example.com"
    Window.add_widget(controller.sm)
    written: list[Path] = []
    for language in ("zh", "en"):
        world.session.tr.set_language(language)
        folder = out_dir / language
        folder.mkdir(parents=True, exist_ok=True)
        for name, make in scenes(controller, world, files, work):
            make()
            pump(4)
            path = folder / f"{name}.png"
            # the whole window, popups (pickers, confirmations) included
            shot = Path(Window.screenshot(name=str(folder / "_shot.png")))
            shot.replace(path)
            written.append(path)
            _close_popups()
    world.session.tr.set_language("zh")
    controller.end_session(navigate=False)
    Window.remove_widget(controller.sm)
    return written


def _close_popups() -> None:
    from mobile_app.ui import dialogs

    popup = dialogs.current.get("popup")
    if popup is not None:
        popup.dismiss(animation=False)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0]) if args else Path("docs/screenshots")
    for path in render_all(out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
