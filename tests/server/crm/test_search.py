"""Server search by characters, pinyin and initials, in pinyin order, in scope — the
manager API's ``q`` and ``sort=pinyin``; SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

from tests.server.conftest import World, new_id
from tests.server.manager.conftest import Web


def test_search_by_characters_pinyin_initials_and_digits(world: World) -> None:
    tag = uuid.uuid4().hex[:6]  # keeps this test's customers apart in the shared world
    rep_a, rep_b = world.phone("rep_a1"), world.phone("rep_b1")
    names = {"张三": "+86 139 1111 0001", "安娜": "13911110002", "白云": "13911110003"}
    ids = {}
    for name, phone in names.items():
        ids[name] = new_id("c")
        fields = {"name": name, "status": "potential", "phone": phone, "company": f"公司{tag}"}
        assert rep_a.push_one("customers", ids[name], fields)["status"] == "applied"
    other = new_id("c")
    rep_b.push_one(
        "customers", other, {"name": "张三丰", "status": "potential", "company": f"公司{tag}"}
    )
    mgr = Web(world, "mgr_a")

    def found(q: str, **params: object) -> list[str]:
        response = mgr.get("/v1/manager/records/customers", params={"q": q, **params})
        assert response.status_code == 200, response.text
        return [r["fields"]["name"] for r in response.json()["items"]]

    assert "张三" in found("zs")
    assert "张三丰" not in found("zsf")  # team B's: out of scope
    assert "张三" in found("zhangsan") and "张三" in found("张") and "张三" in found("ZhangSan")
    assert found("13911110001") == ["张三"]  # compact digits find the spaced number
    assert found(f"gongsi{tag}") == ["安娜", "白云", "张三"]  # pinyin order 安 < 白 < 张
    assert found(f"gongsi{tag}", sort="-pinyin") == ["张三", "白云", "安娜"]
    paged = mgr.get(
        "/v1/manager/records/customers", params={"q": f"gongsi{tag}", "limit": 1, "offset": 1}
    ).json()
    assert paged["total"] == 3 and [r["fields"]["name"] for r in paged["items"]] == ["白云"]
    assert found("%") == []  # a literal, not a wildcard
    assert found("_") == []
    filtered = found(f"gongsi{tag}", filter="name:白云")
    assert filtered == ["白云"]
    admin = Web(world, "admin")
    everyone = admin.get("/v1/manager/records/customers", params={"q": f"gs{tag}"}).json()
    assert [r["fields"]["name"] for r in everyone["items"]] == ["安娜", "白云", "张三", "张三丰"]
    # an edit re-indexes: the old name no longer matches, the new one does
    v = mgr.get(f"/v1/manager/records/customers/{ids['白云']}").json()["version"]
    rep_a.push_one("customers", ids["白云"], {"name": "黑土"}, base_version=v)
    assert "白云" not in found("baiyun") and "黑土" in found("heitu")
