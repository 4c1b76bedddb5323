"""Duplicate detection on every write path — push, manager API, CSV import — with the
deliberate override; on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from tests.server.conftest import World, new_id
from tests.server.manager.conftest import Web


def customer(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "status": "potential", **fields}


def test_push_flags_phone_email_and_name_company_matches(world: World) -> None:
    rep = world.phone("rep_a1")
    first = new_id("c")
    rep.push_one(
        "customers",
        first,
        customer("张三", company="星辰科技有限公司", phone="+86 138-1234-5678", email="ZS@x.cn"),
    )
    cases = [
        customer("李四", mobile="13812345678"),  # same number, other format and field
        customer("王五", email="zs@X.CN"),
        customer("Zhang San", company="星辰科技"),  # same reading, company suffix dropped
        customer("章三", company="Xingchen Keji Co., Ltd."),  # homophone, pinyin company
    ]
    results = rep.push([rep.mutation("customers", new_id("c"), f) for f in cases])
    matched = [r["error"]["details"]["matches"][0]["matched_on"] for r in results]
    assert [r["error"]["code"] for r in results] == ["possible_duplicate"] * 4
    assert matched == ["phone", "email", "name_company", "name_company"]
    assert results[0]["error"]["details"]["matches"][0] == {
        "collection": "customers",
        "record_id": first,
        "matched_on": "phone",
        "name": "张三",
        "owner_id": world.users["rep_a1"],
    }
    assert rep.push_one("customers", new_id("c"), customer("张三"))["status"] == "applied"


def test_override_saves_the_duplicate_deliberately(world: World) -> None:
    rep = world.phone("rep_a1")
    rep.push_one("customers", new_id("c"), customer("甲", phone="13900000001"))
    again = rep.mutation("customers", new_id("c"), customer("甲二", phone="13900000001"))
    assert rep.push([again])[0]["error"]["code"] == "possible_duplicate"
    resent = {**again, "id": new_id("m"), "override": ["possible_duplicate"]}
    assert rep.push([resent])[0]["status"] == "applied"
    bad = {**again, "id": new_id("m"), "override": ["anything"]}
    assert rep.push_raw([bad]).status_code == 422  # strict: only known soft checks


def test_another_reps_customer_is_flagged_without_revealing_it(world: World) -> None:
    world.phone("rep_b1").push_one("customers", new_id("c"), customer("乙", phone="13900000002"))
    result = world.phone("rep_a1").push_one(
        "customers", new_id("c"), customer("乙", phone="139 0000 0002")
    )
    assert result["error"]["code"] == "possible_duplicate"
    assert result["error"]["details"]["matches"] == [{"matched_on": "phone", "visible": False}]


def test_duplicates_within_one_push_and_only_new_keys_on_update(world: World) -> None:
    rep = world.phone("rep_a1")
    a, b = new_id("c"), new_id("c")
    results = rep.push(
        [
            rep.mutation("customers", a, customer("丙", email="c@x.cn")),
            rep.mutation("customers", b, customer("丁", email="C@x.cn")),
        ]
    )
    assert [r["status"] for r in results] == ["applied", "rejected"]
    retried = rep.push_one("customers", b, customer("丁", email="c@x.cn"))  # a new attempt
    assert retried["error"]["code"] == "possible_duplicate"
    # a's unrelated edit does not re-check; changing its e-mail to a free one is fine
    v = results[0]["version"]
    assert rep.push_one("customers", a, {"tier": "high"}, base_version=v)["status"] == "applied"
    moved = rep.push_one("customers", a, {"email": "new@x.cn"}, base_version=v)
    assert moved["status"] == "applied"
    # ... and now the old address is free again, within the same push too
    results = rep.push(
        [
            rep.mutation("customers", a, {"email": "newer@x.cn"}, base_version=v),
            rep.mutation("customers", new_id("c"), customer("戊", email="new@x.cn")),
        ]
    )
    assert [r["status"] for r in results] == ["applied", "applied"]


def test_a_lead_matching_a_customer_is_flagged(world: World) -> None:
    rep = world.phone("rep_a1")
    rep.push_one("customers", new_id("c"), customer("客户", phone="13900000003"))
    lead = {"name": "线索", "status": "new", "phone": "+8613900000003"}
    result = rep.push_one("leads", new_id("l"), lead)
    assert result["error"]["code"] == "possible_duplicate"
    assert result["error"]["details"]["matches"][0]["collection"] == "customers"


def test_manager_api_answers_409_and_accepts_the_override(world: World) -> None:
    mgr = Web(world, "mgr_a")
    mgr.create("customers", customer("己", phone="13900000004"))
    body: dict[str, Any] = {"fields": customer("己二", phone="13900000004")}
    refused = mgr.post("/v1/manager/records/customers", json=body)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "possible_duplicate"
    body["override"] = ["possible_duplicate"]
    assert mgr.post("/v1/manager/records/customers", json=body).status_code == 201


def test_import_flags_duplicates_of_customers_and_leads(world: World) -> None:
    mgr = Web(world, "mgr_a")
    mgr.create("customers", customer("庚", company="远航贸易", phone="13900000005"))
    leads = (
        "name,company,status,phone,owner_id\n"
        f"Geng,远航贸易有限公司,new,,{world.users['rep_a1']}\n"
        "辛,,new,13900000006,\n"
        "辛二,,new,139-0000-0006,\n"
    )
    report = mgr.post("/v1/manager/import/leads", json={"csv": leads}).json()
    assert [(e["row"], e["field"], e["code"]) for e in report["errors"]] == [
        (2, "name", "possible_duplicate"),
        (4, "phone", "possible_duplicate"),
    ]
    assert report["imported"] == 1
    again = mgr.post(
        "/v1/manager/import/leads", json={"csv": leads, "allow_duplicates": True}
    ).json()
    assert (again["imported"], again["failed"]) == (3, 0)  # deliberately, all of them
    owners = {
        item["fields"]["name"]: item["owner_id"]
        for item in mgr.get("/v1/manager/records/leads", params={"limit": 100}).json()["items"]
    }
    assert owners["Geng"] == world.users["rep_a1"]
    assert owners["辛二"] == world.users["mgr_a"]
