"""Icons: the bundled Material Icons font (Apache-2.0; see ``mobile_app/fonts/README.md``).

An icon is one glyph of the font, drawn by any Label or Button with
``font_name=ICON_FONT`` or inline with markup (:func:`icon_markup`), so icons scale with
the text, take its colour and cost no image files. Only the code points below are used
(from the font's ``_variables.scss``); a test checks each draws a real glyph.
"""

from __future__ import annotations

from pathlib import Path

from kivy.core.text import LabelBase

ICON_FONT = "FieldsyncIcons"
ICON_FILE = Path(__file__).resolve().parent.parent / "fonts" / "MaterialIcons-Regular.ttf"

CODEPOINTS: dict[str, int] = {
    "today": 0xE8DF,
    "customers": 0xE7FB,  # people
    "pipeline": 0xE8E5,  # trending_up
    "tasks": 0xE2E6,  # task_alt
    "more": 0xE5D3,  # more_horiz
    "call": 0xE0B0,
    "sms": 0xE625,
    "mail": 0xE158,
    "navigate": 0xE52E,  # directions
    "place": 0xE55F,
    "my_location": 0xE55C,
    "event": 0xE878,
    "schedule": 0xE8B5,
    "check": 0xE5CA,
    "undo": 0xE166,
    "delete": 0xE872,
    "edit": 0xE3C9,
    "add": 0xE145,
    "search": 0xE8B6,
    "back": 0xE5C4,  # arrow_back
    "leads": 0xE7FE,  # person_add
    "contracts": 0xE873,  # description
    "products": 0xE179,  # inventory
    "orders": 0xE8CC,  # shopping_cart
    "knowledge": 0xEA19,  # menu_book
    "targets": 0xEA23,  # emoji_events
    "tickets": 0xF0E2,  # support_agent
    "settings": 0xE8B8,
    "sync": 0xE627,
    "offline": 0xE2C1,  # cloud_off
    "warning": 0xE002,
    "alarm": 0xE855,
    "logout": 0xE9BA,
    "export": 0xE2C4,  # file_download
    "note": 0xF1FC,  # sticky_note_2
    "visit": 0xEA12,  # storefront
    "photo": 0xE412,  # photo_camera
    "star": 0xE838,
    "chevron": 0xE5CC,  # chevron_right
}

_registered = False


def register_icon_font() -> bool:
    global _registered
    if not _registered and ICON_FILE.is_file():
        LabelBase.register(ICON_FONT, str(ICON_FILE))
        _registered = True
    return _registered


def glyph(name: str) -> str:
    return chr(CODEPOINTS[name])


def icon_markup(name: str, size: str = "") -> str:
    """``[font=FieldsyncIcons]…[/font]`` for a Label/Button with ``markup=True``."""
    text = f"[font={ICON_FONT}]{glyph(name)}[/font]" if _registered else ""
    return f"[size={size}]{text}[/size]" if size and text else text


def with_icon(name: str, label: str) -> str:
    """An icon, a space and the (escaped) label, for markup buttons."""
    from kivy.utils import escape_markup

    mark = icon_markup(name)
    return f"{mark} {escape_markup(label)}" if mark else escape_markup(label)
