"""The Kivy application: a window, the screens and the controller that drives them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from kivy.app import App

from mobile_app.i18n import Translator
from mobile_app.ui import prepare
from mobile_app.ui.controller import AppController
from mobile_app.viewmodels.account import AccountFiles, Backend, sdk_backend


def default_data_dir() -> Path:
    """Where the store lives: ``$FIELDSYNC_DATA_DIR``, else the platform's user data dir."""
    env = os.environ.get("FIELDSYNC_DATA_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "fieldsync"


class FieldsyncApp(App):
    title = "Fieldsync"

    def __init__(
        self,
        *,
        backend: Backend | None = None,
        data_dir: Path | None = None,
        tr: Translator | None = None,
        server_url: str | None = None,
        controller_options: dict[str, Any] | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        self.backend = backend or sdk_backend()
        self.data_dir = Path(data_dir) if data_dir else None
        self.tr = tr or Translator()
        self.server_url = server_url
        self.controller_options = controller_options or {}
        self.controller: AppController | None = None

    def build(self) -> Any:
        prepare()
        data_dir = self.data_dir
        if data_dir is None:
            # on Android, App.user_data_dir is the app's private storage
            data_dir = Path(self.user_data_dir) if _on_android() else default_data_dir()
        files = AccountFiles(data_dir)
        options = dict(self.controller_options)
        if "location" not in options:
            from mobile_app.ui.location import PlyerLocation

            options["location"] = PlyerLocation()
        if "camera" not in options:
            from mobile_app.ui.camera import PlyerCamera

            options["camera"] = PlyerCamera(data_dir / "camera")
        if "notifier" not in options:
            from mobile_app.ui.platform import (
                NOTIFICATION_PERMISSIONS,
                PlyerNotifier,
                request_permissions,
            )

            notifier = PlyerNotifier()
            options["notifier"] = notifier
            if notifier.available:  # Android 13+: reminders need the permission
                request_permissions(NOTIFICATION_PERMISSIONS, lambda _ok: None)
        self.controller = AppController(self.backend, files, self.tr, **options)
        if self.server_url:
            self.controller.default_server_url = self.server_url
        self.controller.start()
        return self.controller.sm

    def on_stop(self) -> None:
        if self.controller is not None:
            self.controller.end_session(navigate=False)


def _on_android() -> bool:
    return "ANDROID_ARGUMENT" in os.environ or "ANDROID_PRIVATE" in os.environ
