"""Make Chinese render everywhere: register a CJK font as Kivy's default font.

Kivy's bundled Roboto has no CJK glyphs, so 张三 would draw as empty boxes. The app
ships WenQuanYi Micro Hei (``mobile_app/fonts/wqy-microhei.ttc``; Apache-2.0, see the
licence file beside it) and registers it under ``DEFAULT_FONT`` before any widget is
built, so every Label, Button and TextInput uses it without naming a font. If the
bundled file is missing (a trimmed build), a system CJK font is used instead.
"""

from __future__ import annotations

from pathlib import Path

from kivy.core.text import DEFAULT_FONT, LabelBase

BUNDLED = Path(__file__).resolve().parent.parent / "fonts" / "wqy-microhei.ttc"

#: System fonts with CJK coverage, tried in order when the bundled one is absent.
SYSTEM_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/system/fonts/NotoSansCJK-Regular.ttc",  # Android
    "/system/fonts/DroidSansFallback.ttf",  # older Android
    "/System/Library/Fonts/PingFang.ttc",  # macOS
    "C:/Windows/Fonts/msyh.ttc",  # Windows
)

_registered: str | None = None


def find_cjk_font(
    bundled: Path = BUNDLED, candidates: tuple[str, ...] = SYSTEM_CANDIDATES
) -> str | None:
    if bundled.is_file():
        return str(bundled)
    for candidate in candidates:
        if Path(candidate).is_file():
            return candidate
    return None


def register_cjk_font() -> str | None:
    """Register the CJK font as the default font (idempotent); the path used, or None."""
    global _registered
    if _registered is None:
        path = find_cjk_font()
        if path is None:
            return None
        for name in (DEFAULT_FONT, "FieldsyncCJK"):
            LabelBase.register(name, path, path, path, path)
        _registered = path
    return _registered
