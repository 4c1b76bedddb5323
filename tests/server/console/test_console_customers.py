"""The customer list pages, filters and searches in the database — on SQLite and on
PostgreSQL — and shows exactly the rows the manager API's rules select."""

from __future__ import annotations

import re

import pytest

from server.console.services import customers
from tests.server.conftest import World
from tests.server.console.conftest import Browser

_ROW = re.compile(r'<td><a href="/console/customers/([^"]+)">')
_TOTAL = re.compile(r"共 (\d+) 条|of (\d+)")


def _ids(html: str) -> list[str]:
    return _ROW.findall(html)


def _total(html: str) -> int:
    found = _TOTAL.search(html)
    assert found is not None
    return int(found.group(1) or found.group(2))


def test_list_filters_search_and_pages(world: World) -> None:
    a1, a2 = world.phone("rep_a1"), world.phone("rep_a2")
    expected: dict[str, dict[str, object]] = {}
    for i in range(60):
        phone = a1 if i % 2 else a2
        fields = {
            "name": {7: "张三", 8: "白雪"}.get(i, f"客户{i:02d}"),
            "status": ("potential", "intent", "closed")[i % 3],
            "tier": ("high", "low")[i % 2],
            "mobile": f"+86 139 0000 {i:04d}",
            "tags": ["VIP"] if i % 5 == 0 else ["普通"],
        }
        phone.push_one("customers", f"c-{i:02d}", fields)
        expected[f"c-{i:02d}"] = {**fields, "owner": "u-rep_a1" if i % 2 else "u-rep_a2"}
    world.phone("rep_b1").push_one("customers", "c-b", {"name": "客户99", "status": "intent"})
    mgr = Browser(world, "mgr_a")

    first = mgr.get("/console/customers").text
    assert _total(first) == 60 and len(_ids(first)) == 50
    second = mgr.get("/console/customers?page=2").text
    assert len(_ids(second)) == 10 and not set(_ids(first)) & set(_ids(second))
    assert "c-b" not in _ids(first) + _ids(second)
    # In pinyin order: 白雪 (bai) first although 白 comes after 客 by code point, then
    # 客户00 … 客户59 (ke hu), then 张三 (zhang).
    names = [expected[i]["name"] for i in _ids(first) + _ids(second)]
    assert names[0] == "白雪" and names[-1] == "张三"
    assert names[1:-1] == sorted(names[1:-1])

    def matching(**want: object) -> set[str]:
        return {
            cid
            for cid, f in expected.items()
            if all((v in f["tags"]) if k == "tag" else f[k] == v for k, v in want.items())  # type: ignore[operator]
        }

    for query, want in (
        ("status=intent", {"status": "intent"}),
        ("status=intent&tier=low", {"status": "intent", "tier": "low"}),
        ("tag=VIP", {"tag": "VIP"}),
        ("owner=u-rep_a1", {"owner": "u-rep_a1"}),
    ):
        html = mgr.get(f"/console/customers?{query}").text
        assert set(_ids(html)) == matching(**want), query
        assert _total(html) == len(matching(**want))
    assert _ids(mgr.get("/console/customers?q=%E5%BC%A0").text) == ["c-07"]  # 张
    assert _ids(mgr.get("/console/customers?q=zs").text) == ["c-07"]  # initials
    assert _ids(mgr.get("/console/customers?q=ZhangSan").text) == ["c-07"]  # full pinyin
    assert _ids(mgr.get("/console/customers?q=bx").text) == ["c-08"]
    assert _ids(mgr.get("/console/customers?q=13900000042").text) == ["c-42"]  # digits only
    assert _ids(mgr.get("/console/customers?q=0000%200042").text) == ["c-42"]  # phone text
    assert _ids(mgr.get("/console/customers?q=%25").text) == []  # % is a character, not a wildcard
    assert _ids(mgr.get("/console/customers?owner=u-rep_b1").text) == []
    # A page past the end shows the last page (with and without a search).
    assert set(_ids(mgr.get("/console/customers?page=99").text)) == set(_ids(second))
    searched = mgr.get("/console/customers?q=kehu&page=99").text  # 客户00 … 客户59 but 07, 08
    assert _total(searched) == 58 and len(_ids(searched)) == 8
    assert len(_ids(mgr.get("/console/customers?q=kehu&page=2").text)) == 8


def test_deep_pages_read_the_sort_index_only_when_the_scope_is_everyone(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From ``DEEP_OFFSET`` on, an unfiltered page is read off the sort key's index alone
    when no customer is outside the caller's scope (team A's manager while only team A
    has customers): the same rows as the usual walk. Once the other team has a customer
    the manager never gets it, and that customer stays off every page."""
    for i in range(60):
        world.phone("rep_a1").push_one(
            "customers", f"c-{i:02d}", {"name": f"客户{i:02d}", "status": "intent"}
        )
    world.phone("rep_a2").push_one(
        "customers", "c-a", {"name": "白雪", "status": "intent"}
    )  # sorts first
    mgr = Browser(world, "mgr_a")

    def pages() -> list[list[str]]:
        return [_ids(mgr.get(f"/console/customers?page={n}").text) for n in (1, 2)]

    walked = pages()
    assert walked[0][0] == "c-a" and len(walked[1]) == 11
    taken: list[bool] = []
    real = customers._deep_page

    def deep(*args: object, **kwargs: object) -> list[str] | None:
        found = real(*args, **kwargs)  # type: ignore[arg-type]
        taken.append(found is not None)
        return found

    monkeypatch.setattr(customers, "DEEP_OFFSET", 0)
    monkeypatch.setattr(customers, "_deep_page", deep)
    assert pages() == walked and taken == [True, True]
    # A filter never takes the index-only read.
    assert set(_ids(mgr.get("/console/customers?owner=u-rep_a2").text)) == {"c-a"}
    assert len(taken) == 2
    world.phone("rep_b1").push_one(
        "customers", "c-b", {"name": "安", "status": "intent"}
    )  # would sort first
    assert pages() == walked and taken[2:] == [False, False]
