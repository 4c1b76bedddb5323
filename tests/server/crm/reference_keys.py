"""The duplicate keys and search pieces as computed before issue 19's fast paths
(``server/crm/keys.py`` at 71ffce5, with pypinyin's ``lazy_pinyin`` of the whole text),
frozen: the reference the fast folding is held equal to (``test_duplicate_keys_fast.py``).
Do not optimise this file."""

from __future__ import annotations

import re
from typing import Any

from pypinyin import Style, lazy_pinyin

_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_NOT_WORD = re.compile(r"[\W_]+", re.UNICODE)
_COMPANY_SUFFIX = re.compile(
    r"(股份有限公司|有限责任公司|有限公司|集团公司|集团|公司"
    r"|[\s,.]*\b(co\.?,?\s*ltd|ltd|limited|inc|llc|corp|corporation|gmbh|co)\b\.?)\s*$",
    re.IGNORECASE,
)
_NOT_DIGIT = re.compile(r"\D")


def pinyin_full(text: str) -> str:
    return _NOT_WORD.sub("", "".join(lazy_pinyin(text, errors="default"))).lower()


def pinyin_initials(text: str) -> str:
    return _NOT_WORD.sub(
        "", "".join(lazy_pinyin(text, style=Style.FIRST_LETTER, errors="default"))
    ).lower()


def value_parts(value: str) -> tuple[str, ...]:
    """One value's pieces of the search text."""
    lowered = value.strip().lower().replace("|", " ")
    parts = [lowered]
    compact = _NOT_WORD.sub("", lowered)
    if compact and compact != lowered:
        parts.append(compact)
    if _HAN.search(value):
        parts.extend((pinyin_full(value), pinyin_initials(value)))
    return tuple(p for p in parts if p)


def fold(text: str) -> str:
    text = text.strip()
    return pinyin_full(text) if _HAN.search(text) else _NOT_WORD.sub("", text).lower()


def fold_company(text: str) -> str:
    stripped = text.strip()
    shorter = _COMPANY_SUFFIX.sub("", stripped).strip()
    return fold(shorter or stripped)


def phone_digits(value: str) -> str | None:
    digits = _NOT_DIGIT.sub("", value)
    for prefix in ("0086", "86"):
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11 and digits[-11] == "1":
            digits = digits[len(prefix) :]
    return digits if len(digits) >= 6 else None


def duplicate_keys(fields: dict[str, Any]) -> frozenset[str]:
    phone, mobile, email, name, company = (
        fields.get(n) for n in ("phone", "mobile", "email", "name", "company")
    )
    keys: set[str] = set()
    for value in (phone, mobile):
        if isinstance(value, str) and (digits := phone_digits(value)):
            keys.add(f"p:{digits}")
    if isinstance(email, str) and "@" in email:
        keys.add(f"e:{email.strip().lower()}")
    if isinstance(name, str) and isinstance(company, str) and name.strip() and company.strip():
        n, c = fold_company(name), fold_company(company)
        if n and c:
            keys.add(f"n:{n}|{c}"[:300])
    return frozenset(keys)
