"""GPS through plyer where the platform has it (Android, iOS); nothing elsewhere.

plyer's GPS is callback-based: ``start()`` and wait for ``on_location``. The provider
starts listening when created and hands the view-model the latest fix; ``available`` is
false on platforms where plyer has no GPS (desktop), so the form offers manual entry.
"""

from __future__ import annotations

from typing import Any

from mobile_app.viewmodels.visit import GeoFix


class PlyerLocation:
    def __init__(self) -> None:
        self._fix: GeoFix | None = None
        self.available = False
        from kivy.utils import platform

        if platform not in ("android", "ios"):
            return  # plyer has no desktop GPS (and logs a traceback trying)
        try:
            from plyer import gps

            gps.configure(on_location=self._on_location)
            gps.start(minTime=5000, minDistance=10)
        except Exception:  # NotImplementedError on desktop; no permission; no plyer
            return
        self.available = True

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
