"""Normalised keys of customers and leads: duplicate detection and pinyin search.

**Duplicate keys** (``record_keys``) — a record matches another when one of these is
equal:

* ``p:<digits>`` — a phone or mobile number reduced to its digits, China's ``+86`` /
  ``0086`` prefix removed from mobile numbers (``+86 138-0000-0000`` = ``13800000000``);
  fewer than 6 digits is no key;
* ``e:<address>`` — an e-mail address, trimmed and lower-cased;
* ``n:<name>|<company>`` — name and company both present, each folded to lower-case
  pinyin without spaces or punctuation, legal-form suffixes (有限公司, Co., Ltd …)
  removed: 张三 @ 星辰科技有限公司 = "Zhang San" @ 星辰科技 = 章三 @ 星辰科技 (same
  reading); a company customer named after its company matches the same way.

**Search text** (``record_search``) — the searchable fields lower-cased, compacted
(``13800000000`` finds ``+86 138 0000 0000``), plus each Han value's full pinyin and
initials (``zhangsan``, ``zs``); a search is a substring match on it. The sort key is
the name's pinyin, so lists sort 安 < 白 < 张 as a Chinese user expects.

Polyphonic characters use pypinyin's phrase-aware reading; surnames with a special
reading (曾 zeng, 单 shan) are read as ordinary words — the app has the same limit.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from pypinyin import Style, lazy_pinyin
from pypinyin.constants import RE_HANS

_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_NOT_WORD = re.compile(r"[\W_]+", re.UNICODE)
_COMPANY_SUFFIX = re.compile(
    r"(股份有限公司|有限责任公司|有限公司|集团公司|集团|公司"
    r"|[\s,.]*\b(co\.?,?\s*ltd|ltd|limited|inc|llc|corp|corporation|gmbh|co)\b\.?)\s*$",
    re.IGNORECASE,
)
#: Fields whose change re-checks duplicates.
DUPLICATE_FIELDS = ("name", "company", "phone", "mobile", "email")
#: Collections with duplicate keys and search text.
KEYED = ("customers", "leads")


#: pypinyin's own "Han character" class (``RE_HANS`` is ``^(?:[…])+$``): a run of them.
_HAN_RUN = re.compile(f"({RE_HANS.pattern[len('^(?:') : -len(')+$')]}+)")


@lru_cache(maxsize=32768)
def _han_run(run: str, style: Style) -> tuple[str, ...]:
    if style == Style.FIRST_LETTER:
        # pypinyin's first letter is its normal reading's first character
        # (``OthersConverter.to_first_letter``): one segmentation of the run for both
        # (the search text asks for both of every Han value it indexes).
        return tuple(s[:1] for s in _han_run(run, Style.NORMAL))
    return tuple(lazy_pinyin(run, style=style, errors="default"))


def readings(text: str, style: Style = Style.NORMAL) -> list[str]:
    """``lazy_pinyin(text, style=style, errors="default")``, faster: pypinyin splits text
    at Han / non-Han boundaries first, returns each non-Han run as it is and reads each
    Han run on its own (phrases never span a boundary), so the result is the same run
    by run — and a Han run (a surname, a company, a city) recurs across customers, so
    its reading is cached. ``tests/server/crm/test_pinyin_runs.py`` holds the equality."""
    out: list[str] = []
    for i, part in enumerate(_HAN_RUN.split(text)):
        if i % 2:
            out.extend(_han_run(part, style))
        elif part:
            out.append(part)
    return out


def pinyin_full(text: str) -> str:
    """``张三`` → ``zhangsan``; other characters kept, lower-cased (no spaces).

    ``_NOT_WORD.sub("", "".join(readings(text))).lower()``, with each Han run's readings
    joined once (cached per run) and the cheaper :func:`_word_chars`."""
    parts = _HAN_RUN.split(text)
    for i in range(1, len(parts), 2):
        parts[i] = _run_spelled(parts[i])
    return _word_chars("".join(parts)).lower()


@lru_cache(maxsize=32768)
def _run_spelled(run: str) -> str:
    return "".join(_han_run(run, Style.NORMAL))


def pinyin_initials(text: str) -> str:
    """``张三`` → ``zs``; other characters kept, lower-cased (no spaces).

    ``_NOT_WORD.sub("", "".join(readings(text, Style.FIRST_LETTER))).lower()``, the way
    :func:`pinyin_full` is."""
    parts = _HAN_RUN.split(text)
    for i in range(1, len(parts), 2):
        parts[i] = _run_initials(parts[i])
    return _word_chars("".join(parts)).lower()


def _spellings(text: str) -> tuple[str, str]:
    """``(pinyin_full(text), pinyin_initials(text))`` with one split of the text."""
    full = _HAN_RUN.split(text)
    initials = full.copy()
    for i in range(1, len(full), 2):
        run = full[i]
        full[i], initials[i] = _run_spelled(run), _run_initials(run)
    return _word_chars("".join(full)).lower(), _word_chars("".join(initials)).lower()


@lru_cache(maxsize=32768)
def _run_initials(run: str) -> str:
    return "".join(_han_run(run, Style.FIRST_LETTER))


def has_han(text: str) -> bool:
    return bool(_HAN.search(text))


def _word_chars(text: str) -> str:
    """``_NOT_WORD.sub("", text)``, cheaper when only spaces are to go: ``[\\W_]`` is
    exactly the characters that are not ``str.isalnum`` (the regex engine's word class is
    ``isalnum`` or ``_``), so once the spaces are out, a text that ``isalnum`` has
    nothing left to remove (``tests/server/crm/test_duplicate_keys_fast.py`` checks
    every code point)."""
    compact = text.replace(" ", "")
    return compact if compact.isalnum() else _NOT_WORD.sub("", compact)


def fold(text: str) -> str:
    """A comparison form: pinyin when Han characters are present, else lower-case;
    spaces and punctuation removed."""
    text = text.strip()
    if not text.isascii() and has_han(text):  # an ASCII text has no Han character
        return pinyin_full(text)
    return _word_chars(text).lower()


#: The last character of every text :data:`_COMPANY_SUFFIX` matches in (a match ends
#: the text: ``\s*$`` after a stripped text ends with the suffix's own last character:
#: 司, 团, ``.`` or the last letter of a Latin form, either case — the test checks that
#: no other character matches those letters under ``IGNORECASE``).
_SUFFIX_LAST = frozenset("司团.dcpnhoDCPNHO")


@lru_cache(maxsize=32768)
def fold_company(text: str) -> str:
    """:func:`fold` without a legal-form suffix: 星辰科技有限公司 = 星辰科技 =
    "Xingchen Keji Co., Ltd." (whole words only: "Costco" keeps its "co")."""
    stripped = text.strip()
    if stripped and stripped[-1] in _SUFFIX_LAST:
        shorter = _COMPANY_SUFFIX.sub("", stripped).strip()
        return fold(shorter or stripped)
    return fold(stripped)


def phone_digits(value: str) -> str | None:
    # ``_NOT_DIGIT.sub("", value)``: when only spaces, dashes and a leading "+" separate
    # the digits, removing those leaves decimal digits only (``\D`` is exactly "not
    # ``str.isdecimal``"); anything else goes through the regex.
    digits = value.replace(" ", "").replace("-", "")
    if digits[:1] == "+":
        digits = digits[1:]
    if not digits.isdecimal():
        digits = _NOT_DIGIT.sub("", digits)
    # China's prefix before a mobile number (11 digits, a "1" first): "86" of 13 digits
    # or "0086" of 15 — at most one applies.
    n = len(digits)
    if n == 13 and digits[2] == "1" and digits[:2] == "86":
        return digits[2:]
    if n == 15 and digits[4] == "1" and digits[:4] == "0086":
        return digits[4:]
    return digits if n >= 6 else None


_NOT_DIGIT = re.compile(r"\D")


def duplicate_keys(fields: Mapping[str, Any]) -> frozenset[str]:
    """The duplicate keys of a customer's or lead's fields (see the module docstring).

    Memoised on the five values it reads: a push asks for the keys of one record up to
    four times (the batch's prefetch, the unit's new keys, the keys it remembers, the
    flush's ``record_keys``) and computes them once (``tests/server/crm/
    test_duplicate_keys_once.py``)."""
    parts = (
        fields.get("phone"),
        fields.get("mobile"),
        fields.get("email"),
        fields.get("name"),
        fields.get("company"),
    )
    try:
        return _memo_keys(*parts)
    except TypeError:  # an unhashable value (a list where text belongs): no cache
        return _compute_keys(*parts)


@lru_cache(maxsize=16384)
def _memo_keys(phone: Any, mobile: Any, email: Any, name: Any, company: Any) -> frozenset[str]:
    return _compute_keys(phone, mobile, email, name, company)


def _compute_keys(phone: Any, mobile: Any, email: Any, name: Any, company: Any) -> frozenset[str]:
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


def matched_on(key: str) -> str:
    return {"p": "phone", "e": "email", "n": "name_company"}[key[0]]


def search_text(fields: Mapping[str, Any], names: Iterable[str]) -> str:
    """What a search matches: each searchable value lower-cased, its compact form and
    (for Han text) its full pinyin and initials, separated by ``|``."""
    parts: list[str] = []
    for name in names:
        value = fields.get(name)
        if isinstance(value, str) and value.strip():
            parts.extend(_value_parts(value))
    return "|".join(dict.fromkeys(parts))


@lru_cache(maxsize=65536)
def _value_parts(value: str) -> tuple[str, ...]:
    """One value's pieces of :func:`search_text` (non-empty), memoised: a company, a
    city, a landline's prefix recur across records (the catch-up reads them by the
    thousand)."""
    lowered = value.strip().lower().replace("|", " ")
    parts = [lowered]
    compact = _word_chars(lowered)
    if compact and compact != lowered:
        parts.append(compact)
    if has_han(value):
        parts.extend(_spellings(value))
    return tuple(p for p in parts if p)


def sort_key(fields: Mapping[str, Any]) -> str:
    """The name's pinyin (then the name itself), lower-cased: the list order."""
    name = fields.get("name")
    if not isinstance(name, str):
        return ""
    spelled = " ".join(s.lower() for s in readings(name.strip()) if s.strip())
    return f"{spelled}\t{name}"[:400]


def search_needle(query: str) -> str:
    """A query as it is matched: lower-cased, without spaces or ``|``."""
    return re.sub(r"[\s|]+", "", query).lower()
