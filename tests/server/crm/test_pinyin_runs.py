"""``keys.readings`` (pinyin run by run, Han runs cached) equals pypinyin's
``lazy_pinyin`` of the whole text — the duplicate keys, search text and sort keys it
feeds are unchanged by the speed-up (issue 19)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from pypinyin import Style, lazy_pinyin

from server.crm.keys import readings

# Polyphonic characters whose reading depends on the phrase (重庆 chong / 重点 zhong,
# 银行 hang / 行走 xing), common surnames and company words, 〇, a CJK extension B
# character, ASCII words, digits, spaces and punctuation.
_HAN = "重庆点银行走长大张三李四王曾单上海浦东物流有限公司科技客户〇𠀀"
_OTHER = "ab Co.,Ltd 0-9 +()|_、，。"
texts = st.text(alphabet=st.sampled_from(_HAN + _OTHER), max_size=24)


@settings(max_examples=400, deadline=None)
@given(texts, st.sampled_from([Style.NORMAL, Style.FIRST_LETTER]))
def test_readings_equal_lazy_pinyin_of_the_whole_text(text: str, style: Style) -> None:
    assert readings(text, style) == lazy_pinyin(text, style=style, errors="default")


def test_a_phrase_is_read_as_a_phrase_across_the_cache() -> None:
    assert readings("重庆") == ["chong", "qing"]
    assert readings("重点 重庆") == ["zhong", "dian", " ", "chong", "qing"]


def test_first_letters_are_the_normal_readings_first_letters_across_the_han_block() -> None:
    """``readings(…, FIRST_LETTER)`` is derived from the NORMAL reading (one segmentation
    for both): equal to pypinyin's own first letters for every 7th character of the CJK
    block and extension A, alone and in a phrase."""
    chars = [chr(c) for c in range(0x3400, 0xA000, 7)]
    for ch in chars:
        assert readings(ch, Style.FIRST_LETTER) == lazy_pinyin(
            ch, style=Style.FIRST_LETTER, errors="default"
        ), ch
    phrase = "".join(chars[::97])
    assert readings(phrase, Style.FIRST_LETTER) == lazy_pinyin(
        phrase, style=Style.FIRST_LETTER, errors="default"
    )
