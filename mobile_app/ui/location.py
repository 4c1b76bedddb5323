"""GPS through plyer where the platform has it (Android, iOS); nothing elsewhere.

plyer's GPS is callback-based: ``start()`` and wait for ``on_location``. On Android the
location permission is asked at run time first (Android 6+): :meth:`ensure` asks, then
starts listening; the view-model reads the latest fix with :meth:`current`. Where
plyer has no GPS (desktop) ``available`` is false and the form offers the map-free
fallback (the customer's address, or a typed place).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mobile_app.viewmodels.visit import GeoFix

from .platform import LOCATION_PERMISSIONS, request_permissions


class PlyerLocation:
    def __init__(self) -> None:
        self._fix: GeoFix | None = None
        self._started = False
        self.available = False
        self.denied = False
        from kivy.utils import platform

        if platform not in ("android", "ios"):
            return  # plyer has no desktop GPS (and logs a traceback trying)
        try:
            from plyer import gps

            gps.configure(on_location=self._on_location)
        except Exception:  # NotImplementedError; no plyer
            return
        self.available = True

    def ensure(self, done: Callable[[bool], None]) -> None:
        """Ask for the location permission (once granted, start the GPS); ``done(ok)``."""
        if not self.available:
            done(False)
            return

        def granted(ok: bool) -> None:
            self.denied = not ok
            if ok and not self._started:
                try:
                    from plyer import gps

                    gps.start(minTime=5000, minDistance=10)
                    self._started = True
                except Exception:
                    ok = False
            done(ok)

        request_permissions(LOCATION_PERMISSIONS, granted)

    def _on_location(self, **kw: Any) -> None:
        try:
            accuracy = kw.get("accuracy")
            self._fix = GeoFix(
                float(kw["lat"]), float(kw["lon"]), float(accuracy) if accuracy else None
            )
        except (KeyError, TypeError, ValueError):
            return

    def current(self) -> GeoFix | None:
        return self._fix
