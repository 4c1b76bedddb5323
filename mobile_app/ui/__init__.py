"""The Kivy layer: thin screens bound to the view-models in :mod:`mobile_app.viewmodels`.

``prepare()`` must run before any widget is created: it registers the CJK font as the
default font and loads ``fieldsync.kv`` (once per process — Kivy would apply the rules
twice if the file were loaded again).
"""

from __future__ import annotations

from pathlib import Path

KV_FILE = Path(__file__).with_name("fieldsync.kv")
_kv_loaded = False


def prepare() -> str | None:
    """Register the CJK font and load the kv rules (idempotent); the font path used."""
    global _kv_loaded
    from .fonts import register_cjk_font
    from .icons import register_icon_font

    font = register_cjk_font()
    register_icon_font()
    if not _kv_loaded:
        from kivy.lang import Builder

        from . import widgets  # noqa: F401  (the classes the rules style)

        Builder.load_file(str(KV_FILE))
        _kv_loaded = True
    return font
