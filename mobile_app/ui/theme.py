"""Colours and type sizes (one place, so the phone and desktop look the same)."""

from __future__ import annotations

from kivy.metrics import sp

PRIMARY = (0.09, 0.40, 0.75, 1)
PRIMARY_DARK = (0.05, 0.28, 0.55, 1)
ACCENT = (0.94, 0.42, 0.0, 1)  # pending (not yet synced)
DANGER = (0.78, 0.16, 0.16, 1)
TEXT = (0.13, 0.13, 0.13, 1)
MUTED = (0.45, 0.45, 0.48, 1)
BACKGROUND = (0.96, 0.96, 0.97, 1)
SURFACE = (1, 1, 1, 1)
SELECTED = (0.86, 0.91, 0.98, 1)
DIVIDER = (0.88, 0.88, 0.90, 1)
INPUT = (1, 1, 1, 1)
INPUT_ERROR = (1, 0.92, 0.92, 1)
BAR_ONLINE = (0.18, 0.49, 0.20, 1)
BAR_OFFLINE = (0.38, 0.38, 0.42, 1)

FONT = sp(15)
FONT_SMALL = sp(12.5)
FONT_TITLE = sp(19)
