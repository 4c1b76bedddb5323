"""CSV import with good rows, bad rows and duplicates → exactly the expected report and
rows; CSV export honouring the list filters. On SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io

from tests.server.conftest import World
from tests.server.manager.conftest import Web

CUSTOMERS_CSV = """name,status,phone,email,tier,tags,owner_id
张三,potential,+86 139 1111 0001,zs@example.cn,high,vip;north,u-rep_a1
李四,intent,139 1111 0002,,mid,,
,potential,+86 139 1111 0003,,,,
王五,unknown,+86 139 1111 0004,ww@example,,,
赵六,potential,8613800000001,,,,
钱七,potential,+86 139 1111 0009,ZS@Example.cn,,,
孙八,potential,(139) 1111-0002,,,,
周九,potential,+86 139 1111 0010,,low,,u-rep_b1
吴十,closed,+86 139 1111 0011,wu@example.cn,,,u-rep_a2
"""


def _customers(mgr: Web) -> dict[str, dict[str, object]]:
    page = mgr.get("/v1/manager/records/customers", params={"limit": 1000}).json()
    return {item["fields"]["name"]: item for item in page["items"]}


def test_customer_import_report_and_rows(world: World, mgr: Web) -> None:
    mgr.create("customers", {"name": "老客户", "status": "intent", "phone": "+86 138 0000 0001"})
    rep = world.phone("rep_a1")
    rep.sync_down()

    dry = mgr.post("/v1/manager/import/customers", json={"csv": CUSTOMERS_CSV, "dry_run": True})
    assert dry.status_code == 200, dry.text
    assert (dry.json()["imported"], dry.json()["failed"]) == (0, 6)
    assert set(_customers(mgr)) == {"老客户"}  # a dry run writes nothing

    response = mgr.post("/v1/manager/import/customers", json={"csv": CUSTOMERS_CSV})
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["rows"], report["imported"], report["failed"]) == (9, 3, 6)
    assert [(e["row"], e["field"], e["code"]) for e in report["errors"]] == [
        (4, "name", "required"),
        (5, "email", "invalid_email"),
        (5, "status", "invalid_choice"),
        (6, "phone", "possible_duplicate"),  # same digits as the existing 老客户
        (7, "email", "possible_duplicate"),  # ZS@Example.cn is row 2's address
        (8, "phone", "possible_duplicate"),  # (139) 1111-0002 is row 3's number
        (9, "owner_id", "unknown_owner"),  # rep_b1 is in team B
    ]
    messages = {(e["row"], e["field"]): e["message"] for e in report["errors"]}
    assert messages[(7, "email")] == "same email as row 2"
    assert messages[(8, "phone")] == "same phone as row 3"
    assert messages[(6, "phone")].startswith("same phone as existing record ")

    rows = _customers(mgr)
    assert set(rows) == {"老客户", "张三", "李四", "吴十"}  # a failed row imports nothing
    assert len(report["ids"]) == 3
    assert rows["张三"]["owner_id"] == world.users["rep_a1"]
    assert rows["张三"]["fields"]["tags"] == ["vip", "north"]
    assert rows["张三"]["fields"]["tier"] == "high"
    assert rows["李四"]["owner_id"] == world.users["mgr_a"]  # no owner column value: the importer
    assert rows["吴十"]["owner_id"] == world.users["rep_a2"]
    assert rows["吴十"]["fields"]["email"] == "wu@example.cn"
    # Imported rows sync like any write.
    pulled = {c["fields"]["name"] for c in rep.sync_down() if c["collection"] == "customers"}
    assert pulled == {"张三"}


def test_contacts_and_opportunities_import(world: World, mgr: Web) -> None:
    c1 = mgr.create("customers", {"name": "甲", "status": "intent"})["id"]
    mgr.create("pipeline_stages", {"name": "Lead", "position": 1}, id="s1")
    mgr.create("contacts", {"customer_id": c1, "name": "旧联系人", "email": "a@x.cn"})
    contacts = (
        "customer_id,name,email,is_primary\n"
        f"{c1},新联系人,b@x.cn,yes\n"
        f"{c1},重复,A@X.CN,no\n"
        "c-missing,没有客户,c@x.cn,\n"
        f"{c1},坏布尔,d@x.cn,maybe\n"
    )
    report = mgr.post("/v1/manager/import/contacts", json={"csv": contacts}).json()
    assert (report["imported"], report["failed"]) == (1, 3)
    assert [(e["row"], e["field"], e["code"]) for e in report["errors"]] == [
        (3, "email", "duplicate"),
        (4, "customer_id", "unknown_customer"),
        (5, "is_primary", "type"),
    ]
    opportunities = (
        "customer_id,name,stage_id,amount,status\n"
        f"{c1},大单,s1,12000.5,open\n"
        f"{c1},大单,s1,1,open\n"
        f"{c1},未知阶段,s9,1,open\n"
        f"{c1},金额错,s1,abc,open\n"
    )
    report = mgr.post("/v1/manager/import/opportunities", json={"csv": opportunities}).json()
    assert [(e["row"], e["field"], e["code"]) for e in report["errors"]] == [
        (3, "name", "duplicate"),  # same customer and name as row 2
        (4, "stage_id", "unknown_stage"),
        (5, "amount", "type"),
    ]
    opps = mgr.get("/v1/manager/records/opportunities").json()["items"]
    assert [(o["fields"]["name"], o["fields"]["amount"]) for o in opps] == [("大单", 12000.5)]

    # atomic: one bad row and nothing at all is imported.
    atomic = f"customer_id,name,stage_id,status\n{c1},好的,s1,open\n{c1},坏的,s1,nope\n"
    report = mgr.post(
        "/v1/manager/import/opportunities", json={"csv": atomic, "atomic": True}
    ).json()
    assert (report["imported"], report["failed"], report["ids"]) == (0, 1, [])
    assert len(mgr.get("/v1/manager/records/opportunities").json()["items"]) == 1

    # An unknown column is refused before any row is read.
    report = mgr.post("/v1/manager/import/contacts", json={"csv": "name,shoe_size\nx,42\n"}).json()
    assert [(e["row"], e["field"], e["code"]) for e in report["errors"]] == [
        (1, "shoe_size", "unknown_column")
    ]


def test_export_honours_filters(world: World, mgr: Web) -> None:
    a1 = world.users["rep_a1"]
    mgr.create(
        "customers", {"name": "导出一", "status": "intent", "tags": ["vip", "north"]}, owner_id=a1
    )
    mgr.create("customers", {"name": "导出二", "status": "potential", "phone": "+86 1"})
    mgr.create("customers", {"name": "导出三", "status": "intent", "custom": {"k": 1}})
    response = mgr.get(
        "/v1/manager/export/customers", params={"filter": "status:intent", "sort": "name"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["name"] for r in rows] == ["导出一", "导出三"]
    assert rows[0]["tags"] == "vip;north"
    assert rows[0]["owner_id"] == a1
    assert rows[1]["custom"] == '{"k": 1}'
    assert list(rows[0])[:4] == ["id", "version", "owner_id", "name"]
    only_a1 = mgr.get("/v1/manager/export/customers", params={"owner_id": a1}).text
    assert [r["name"] for r in csv.DictReader(io.StringIO(only_a1))] == ["导出一"]
    # The export reads back in: with its ids, every row is reported as existing.
    report = mgr.post(
        "/v1/manager/import/customers", json={"csv": response.text, "dry_run": True}
    ).json()
    assert {(e["field"], e["code"]) for e in report["errors"]} == {("id", "exists")}
