"""Pinyin search keys: ``zhangsan`` and ``zs`` find 张三.

Chinese CRM users type names the way their input method spells them: full pinyin
(``zhangsan``) or the initials of each syllable (``zs``). The SDK's text search is a
casefolded substring match over an entity's ``search_fields``; it lets an app add extra
strings per record through the ``search_keys`` hook of ``Store.open``. This module is
that hook: for every searchable value containing Han characters it yields the full
pinyin joined without spaces and the syllable initials, so a substring of either matches
(``zhang`` and ``zsk`` work too: the latter on 张三科技). Values with spaces or dashes
also get a compact form, so ``13800000000`` finds ``+86 138 0000 0000``.

Polyphonic characters use pypinyin's phrase-aware reading (lazy style, no tones).
Known limit: surnames with a special reading are read as ordinary words (曾 → ceng,
单 → dan), so ``zeng`` does not find 曾小贤; characters and initials still do.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pypinyin import Style, lazy_pinyin

from sync_protocol import CRM_SCHEMA

_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_NOT_WORD = re.compile(r"[\s\-_.·,，()（）]+")


def has_han(text: str) -> bool:
    return bool(_HAN.search(text))


def pinyin_forms(text: str) -> list[str]:
    """Full pinyin and initials of ``text``, lower case without spaces (``[]`` if no Han)."""
    if not has_han(text):
        return []
    syllables = [s for s in lazy_pinyin(text, errors="default") if s.strip()]
    initials = [s for s in lazy_pinyin(text, style=Style.FIRST_LETTER) if s.strip()]
    full = _NOT_WORD.sub("", "".join(syllables)).lower()
    short = _NOT_WORD.sub("", "".join(initials)).lower()
    return [f for f in dict.fromkeys((full, short)) if f]


def search_keys(collection: str, fields: Mapping[str, Any]) -> list[str]:
    """The ``search_keys`` hook for ``Store.open``: pinyin forms of the searchable fields."""
    entity = CRM_SCHEMA.get(collection)
    names = entity.search_fields if entity else ("name",)
    keys: list[str] = []
    for name in names:
        value = fields.get(name)
        if isinstance(value, str) and value:
            keys.extend(pinyin_forms(value))
            compact = _NOT_WORD.sub("", value).lower()
            if compact != value.lower():
                # "+86 138-0000" is found by 138000, "John Smith" by johnsmith.
                keys.append(compact)
    return list(dict.fromkeys(keys))
