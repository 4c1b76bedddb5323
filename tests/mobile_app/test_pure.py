"""The parts of the app that need no window: no-kivy rule, strings, pinyin keys."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import mobile_app.viewmodels
from mobile_app.i18n import Translator, all_choice_keys, all_keys, raw_pair, system_language
from mobile_app.pinyin_search import pinyin_forms, search_keys
from mobile_app.viewmodels.fields import NotConvertible, spec_for, to_text, to_value

ROOT = Path(__file__).resolve().parents[2]


def test_importing_every_viewmodel_module_never_loads_kivy() -> None:
    modules = [
        f"mobile_app.viewmodels.{m.name}"
        for m in pkgutil.iter_modules(mobile_app.viewmodels.__path__)
    ]
    assert len(modules) >= 10
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "import mobile_app.i18n, mobile_app.pinyin_search, mobile_app.demo\n"
        "loaded = sorted(m for m in sys.modules if m == 'kivy' or m.startswith('kivy.'))\n"
        "print('KIVY' if loaded else 'CLEAN', loaded[:5])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("CLEAN"), out.stdout


def test_every_string_exists_in_both_languages() -> None:
    for key in all_keys() + all_choice_keys():
        en, zh = raw_pair(key)
        assert en.strip() and zh.strip(), key
        # the same placeholders in both languages
        assert sorted(_fields(en)) == sorted(_fields(zh)), key


def _fields(text: str) -> list[str]:
    import string

    return [name for _, name, _, _ in string.Formatter().parse(text) if name]


def test_language_follows_the_system_locale_and_switches_at_runtime() -> None:
    assert system_language({"LANG": "zh_CN.UTF-8"}) == "zh"
    assert system_language({"LC_ALL": "en_US.UTF-8", "LANG": "zh_CN.UTF-8"}) == "en"
    assert system_language({}) == "en"
    tr = Translator("en")
    heard: list[str] = []
    tr.subscribe(heard.append)
    assert tr("nav.customers") == "Customers"
    tr.set_language("zh")
    assert tr("nav.customers") == "客户" and heard == ["zh"]
    assert tr.field_label("customers", "next_follow_up") == "下次跟进"
    assert tr.choice("status", "intent") == "意向客户"
    with pytest.raises(ValueError):
        tr.set_language("fr")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("张三", ["zhangsan", "zs"]),
        ("欧阳娜娜", ["ouyangnana", "oynn"]),
        ("上海张三贸易有限公司", ["shanghaizhangsanmaoyiyouxiangongsi", "shzsmyyxgs"]),
        ("Alice", []),
    ],
)
def test_pinyin_forms_full_and_initials(text: str, expected: list[str]) -> None:
    assert pinyin_forms(text) == expected


def test_search_keys_cover_every_search_field_and_compact_forms() -> None:
    keys = search_keys(
        "customers",
        {"name": "李四", "company": "北京李四科技", "phone": "+86 139 1111 2222", "notes": "张三"},
    )
    assert "lisi" in keys and "ls" in keys
    assert "beijinglisikeji" in keys and "bjlskj" in keys
    assert "+8613911112222" in keys
    assert "zhangsan" not in keys  # notes are not a search field of customers


def test_form_text_converts_by_field_type() -> None:
    assert to_value(spec_for("opportunities", "amount"), "12,500") == 12500
    assert to_value(spec_for("opportunities", "probability"), "0.5") == 0.5
    assert to_value(spec_for("customers", "tags"), "VIP，展会, ") == ["VIP", "展会"]
    assert to_value(spec_for("customers", "name"), "  ") is None
    assert to_value(spec_for("customers", "location"), "31.2, 121.5") == {"lat": 31.2, "lon": 121.5}
    with pytest.raises(NotConvertible):
        to_value(spec_for("opportunities", "amount"), "lots")
    assert to_text(spec_for("customers", "tags"), ["a", "b"]) == "a, b"
    assert to_text(spec_for("opportunities", "amount"), 90000.0) == "90000"
