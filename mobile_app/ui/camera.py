"""The camera through plyer where the platform has one (Android, iOS); none elsewhere.

plyer's ``camera.take_picture(filename, on_complete)`` opens the system camera app and
calls back with the file it wrote. Desktops have no plyer camera: ``available`` is false
and the visit screens offer the file chooser (and a path field) instead.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from kivy.clock import Clock

from .platform import CAMERA_PERMISSIONS, request_permissions


class NoCamera:
    """Desktop and tests: photos come from files."""

    available = False

    def take(self, on_done: Callable[[str | None], None]) -> None:
        on_done(None)


class PlyerCamera:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.available = False
        self._camera: Any = None
        from kivy.utils import platform

        if platform not in ("android", "ios"):
            return
        try:
            from plyer import camera

            self._camera = camera
        except Exception:  # no plyer, no camera facade
            return
        self.available = True

    def take(self, on_done: Callable[[str | None], None]) -> None:
        """Open the camera; ``on_done(path or None)`` on the UI thread."""
        if not self.available:
            on_done(None)
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.folder / datetime.now().strftime("IMG_%Y%m%d_%H%M%S.jpg")

        def complete(path: Any = None) -> bool:
            done = str(path or target)
            ok = Path(done).is_file()
            Clock.schedule_once(lambda _dt: on_done(done if ok else None))
            return False  # plyer: do not delete the file

        def granted(ok: bool) -> None:
            if not ok:
                on_done(None)
                return
            try:
                self._camera.take_picture(filename=str(target), on_complete=complete)
            except Exception:  # no camera app
                on_done(None)

        # declaring CAMERA obliges asking for it at run time before the camera intent
        request_permissions(CAMERA_PERMISSIONS, granted)
