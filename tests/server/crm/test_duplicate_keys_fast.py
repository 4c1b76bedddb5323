"""The duplicate keys' and search pieces' fast paths (issue 19) give what the frozen reference
(:mod:`tests.server.crm.reference_keys`: the regexes and pypinyin's ``lazy_pinyin`` of
the whole text) gives, byte for byte, on awkward inputs: Han text (phrases, polyphones,
extension B), mixed scripts, full-width letters and digits, emoji, odd whitespace and
case (final sigma, dotted İ, ß), legal-form suffixes and phone formats."""

from __future__ import annotations

import re
import sys
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from server.crm import keys
from tests.server.crm import reference_keys as ref

_HAN = "张三李四王五曾单重庆银行长星辰科技上海浦东物流客户〇𠀀丨龘"
_SUFFIXES = [
    "有限公司",
    "股份有限公司",
    "有限责任公司",
    "集团",
    "集团公司",
    "公司",
    " Co., Ltd.",
    " co ltd",
    " Ltd",
    " LIMITED",
    " Inc.",
    " LLC",
    " Corp",
    " Corporation",
    " GmbH",
    " Co",
    "Co.",
    " co.,ltd",
    "Costco",
    " Inc",
    "ＬＴＤ",
    " ｃｏ",
]
_OTHER = (
    "abcXYZ Ωσς ΑΣ İıßẞ ǅ ﬁ Ꭰ 0123456789 ０１２３ ９ ٣ ۵ ߁ ① ² "
    "ＡＢｃ　\u00a0\u2003\t\n\r_-+()（）.,，。、|@·'’🙂👩‍💻🇨🇳 é e\u0301 ㈱ ㍿ カタカナ ひらがな 한국어 ✓"
)
_PHONE = "0123456789 +-()０１２３４５６７８９٣ ext.x#/\u00a0\u3000"

texts = st.one_of(
    st.text(alphabet=st.sampled_from(_HAN + _OTHER), max_size=20),
    st.builds(
        lambda a, b, c: a + b + c,
        st.text(alphabet=st.sampled_from(_HAN + _OTHER), max_size=10),
        st.sampled_from(_SUFFIXES),
        st.sampled_from(["", " ", "\u3000", ".", " .", "\n", "  "]),
    ),
    st.text(max_size=12),  # anything at all
)
phones = st.one_of(
    st.text(alphabet=st.sampled_from(_PHONE), max_size=22),
    st.builds(
        lambda p, n, s: p + n + s,
        st.sampled_from(["", "+86", "+86 ", "0086", "0086-", "86", "+", "(021) ", "＋86 "]),
        st.one_of(
            st.from_regex(r"1[0-9]{2}[ -]?[0-9]{4}[ -]?[0-9]{4}", fullmatch=True),
            st.from_regex(r"[0-9]{3}[ -]?[0-9]{4}[ -]?[0-9]{4}", fullmatch=True),
        ),
        st.sampled_from(["", " ", " ext 12", "-"]),
    ),
    st.text(max_size=16),
)
values = st.one_of(st.none(), st.just(""), st.just("  "), st.integers(), texts)


@st.composite
def customer_fields(draw: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, strategy in (
        ("phone", st.one_of(st.none(), phones, st.integers())),
        ("mobile", st.one_of(st.none(), phones)),
        ("email", st.one_of(st.none(), texts, st.builds(lambda a, b: f"{a}@{b}", texts, texts))),
        ("name", values),
        ("company", values),
    ):
        if draw(st.booleans()):
            fields[name] = draw(strategy)
    return fields


@settings(max_examples=1500, deadline=None)
@given(customer_fields())
@example({"name": "张三", "company": "星辰科技有限公司", "phone": "+86 138-0000-0000"})
@example({"name": "Zhang San", "company": "Xingchen Keji Co., Ltd.", "mobile": "008613800000000"})
@example({"name": "ΑΣ ΒΓ", "company": "ΟΔΟΣ", "email": " A@B.C "})
@example({"name": "客户 Customer 000001", "company": "上海浦东物流有限公司 Branch 3"})
@example({"name": "İstanbul", "company": "ǅemal GmbH.", "phone": "１３８ ０００ ０００００"})
def test_duplicate_keys_equal_the_reference(fields: dict[str, Any]) -> None:
    assert keys._compute_keys(*(fields.get(n) for n in _PARTS)) == ref.duplicate_keys(fields)
    assert keys.duplicate_keys(fields) == ref.duplicate_keys(fields)


_PARTS = ("phone", "mobile", "email", "name", "company")


@settings(max_examples=1500, deadline=None)
@given(texts)
def test_folding_equals_the_reference(text: str) -> None:
    assert keys.fold(text) == ref.fold(text)
    assert keys.fold_company.__wrapped__(text) == ref.fold_company(text)  # type: ignore[attr-defined]
    assert keys.pinyin_full(text) == ref.pinyin_full(text)
    assert keys.pinyin_initials(text) == ref.pinyin_initials(text)
    assert keys._value_parts.__wrapped__(text) == ref.value_parts(text)  # type: ignore[attr-defined]


@settings(max_examples=1500, deadline=None)
@given(phones)
@example("0086 238 0000 0000")
@example("86 238 0000 0000")
@example("+86 (138) 0000 0000")
def test_phone_digits_equal_the_reference(value: str) -> None:
    assert keys.phone_digits(value) == ref.phone_digits(value)


def _every_code_point() -> str:
    return "".join(chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF)


def test_the_shortcuts_hold_for_every_code_point() -> None:
    """What the shortcuts assume of the regexes, over all of Unicode: ``[\\W_]`` is
    "not ``isalnum``", ``\\D`` is "not ``isdecimal``", and only ``_SUFFIX_LAST`` can end
    a legal-form suffix (no other character matches 司, 团, ``.`` or a Latin form's last
    letter under ``IGNORECASE``)."""
    every = _every_code_point()
    assert re.sub(r"[\W_]", "", every) == "".join(c for c in every if c.isalnum())
    assert re.sub(r"\D", "", every) == "".join(c for c in every if c.isdecimal())
    last = re.compile(r"[司团.dcpnho]", re.IGNORECASE)
    assert {c for c in every if last.fullmatch(c)} == keys._SUFFIX_LAST
    for c in every:  # one at a time: the shortcut's own path
        assert keys._word_chars(c) == ref._NOT_WORD.sub("", c)


def test_a_suffix_ending_in_a_shortcut_character_is_still_removed() -> None:
    for suffix in _SUFFIXES:
        assert keys.fold_company.__wrapped__("星辰" + suffix) == ref.fold_company("星辰" + suffix)  # type: ignore[attr-defined]
    assert keys.fold_company("星辰科技有限公司") == keys.fold_company("Xingchen Keji Co., Ltd.")
    assert keys.fold_company("Costco") == "costco"
