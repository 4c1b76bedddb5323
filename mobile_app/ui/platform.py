"""What the phone does for the app: open a URI (dialer, SMS, mail, maps), post a local
notification, ask for a runtime permission. Each has a desktop/test stand-in.

* **URIs** go to Android as an ``ACTION_VIEW`` intent (``tel:`` as ``ACTION_DIAL``: the
  dialer opens with the number, the rep presses call — no CALL_PHONE permission); on a
  desktop to :mod:`webbrowser`.
* **Notifications** use plyer's ``notification`` where the platform has one (Android needs
  POST_NOTIFICATIONS from 13 on, asked at start); elsewhere the app shows an in-app banner.
* **Permissions** (Android 6+ asks at run time): ``request(perms, done)`` through
  python-for-android's ``android.permissions``; every other platform answers "granted".
"""

from __future__ import annotations

import webbrowser
from collections.abc import Callable
from typing import Any

from kivy.utils import platform

LOCATION_PERMISSIONS = ("ACCESS_FINE_LOCATION", "ACCESS_COARSE_LOCATION")
NOTIFICATION_PERMISSIONS = ("POST_NOTIFICATIONS",)
CAMERA_PERMISSIONS = ("CAMERA",)
#: Every Android permission the app uses, and why (buildozer.spec must declare exactly
#: these; tests/mobile_app/test_android_spec.py checks).
MANIFEST_PERMISSIONS: dict[str, str] = {
    "INTERNET": "sync with the server",
    "ACCESS_NETWORK_STATE": "know when a connection appears",
    **{name: "visit check-in location" for name in LOCATION_PERMISSIONS},
    **{name: "photos on a visit" for name in CAMERA_PERMISSIONS},
    "READ_MEDIA_IMAGES": "pick a photo file (Android 13+)",
    "READ_EXTERNAL_STORAGE": "pick a photo file (Android 12 and older)",
    **{name: "task reminders" for name in NOTIFICATION_PERMISSIONS},
}


class PlatformLauncher:
    """Hands URIs to the phone (or the desktop's browser)."""

    def open(self, uri: str) -> bool:
        if platform == "android":
            return _android_view(uri)
        try:
            return bool(webbrowser.open(uri))
        except Exception:  # no browser registered
            return False


def _android_view(uri: str) -> bool:  # pragma: no cover - runs on a phone only
    try:
        from jnius import autoclass

        intent_cls = autoclass("android.content.Intent")
        uri_cls = autoclass("android.net.Uri")
        activity = autoclass("org.kivy.android.PythonActivity").mActivity
        action = intent_cls.ACTION_DIAL if uri.startswith("tel:") else intent_cls.ACTION_VIEW
        intent = intent_cls(action, uri_cls.parse(uri))
        activity.startActivity(intent)
        return True
    except Exception:
        return False


class PlyerNotifier:
    """Local notifications through plyer where they exist; ``available`` says so."""

    def __init__(self) -> None:
        self.available = platform in ("android", "ios", "macosx", "win")
        self._notification: Any = None
        if self.available:
            try:
                from plyer import notification

                self._notification = notification
            except Exception:
                self.available = False

    def notify(self, title: str, message: str) -> bool:
        if not self.available:
            return False
        try:
            self._notification.notify(title=title, message=message, app_name="Fieldsync")
        except Exception:  # NotImplementedError, no permission
            return False
        return True


class NoNotifier:
    available = False

    def notify(self, title: str, message: str) -> bool:
        return False


def request_permissions(names: tuple[str, ...], done: Callable[[bool], None]) -> None:
    """Ask Android for ``names`` (``Manifest.permission`` names); ``done(granted)``.

    Other platforms have no runtime permissions: granted at once.
    """
    if platform != "android":
        done(True)
        return
    try:  # pragma: no cover - python-for-android only
        from android.permissions import Permission, check_permission
        from android.permissions import request_permissions as ask

        perms = [getattr(Permission, n) for n in names]
        if all(check_permission(p) for p in perms):
            done(True)
            return

        def answered(_perms: list[str], grants: list[bool]) -> None:
            from kivy.clock import Clock

            Clock.schedule_once(lambda _dt: done(any(grants)))

        ask(perms, answered)
    except Exception:
        done(False)
