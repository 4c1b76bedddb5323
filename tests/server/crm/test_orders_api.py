"""Quotes and orders through the manager API: catalogue prices (tier price book),
totals by the shared function, quote → order, order status — SQLite and PostgreSQL."""

from __future__ import annotations

from tests.server.conftest import World, new_id
from tests.server.manager.conftest import Web


def _catalogue(world: World) -> tuple[str, str]:
    admin = world.phone("admin")
    robot, mop = new_id("p"), new_id("p")
    admin.push_one(
        "products",
        robot,
        {"name": "扫地机器人", "price": 1999, "tier_prices": {"high": 1799}, "tax_rate": 0.13},
    )
    admin.push_one("products", mop, {"name": "拖把", "price": 33.335, "active": True})
    return robot, mop


def test_quote_priced_from_the_catalogue_becomes_an_order(world: World) -> None:
    mgr, rep = Web(world, "mgr_a"), world.phone("rep_a1")
    robot, mop = _catalogue(world)
    cid = new_id("c")
    rep.push_one("customers", cid, {"name": "大客户", "status": "intent", "tier": "high"})
    body = {
        "customer_id": cid,
        "valid_until": "2026-12-31",
        "lines": [
            {"product_id": robot, "quantity": 2},  # tier price 1799, the product's 13 % tax
            {"product_id": mop, "quantity": 3, "discount": 0.1},
        ],
    }
    created = mgr.post("/v1/manager/quotes", json=body)
    assert created.status_code == 201, created.text
    quote, lines = created.json()["quote"], created.json()["lines"]
    first, second = (line["fields"] for line in lines)
    assert (first["list_price"], first["unit_price"], first["tax_rate"]) == (1799, 1799, 0.13)
    assert first["line_total"] == 4065.74  # 3598 + 467.74 tax
    assert (second["list_price"], second["line_total"]) == (33.335, 90.01)  # 100.01 - 10.00
    assert quote["fields"]["total"] == 4155.75
    assert quote["fields"]["status"] == "draft" and quote["fields"]["kind"] == "quote"

    ordered = mgr.post(f"/v1/manager/quotes/{quote['id']}/order")
    assert ordered.status_code == 201, ordered.text
    order = ordered.json()["quote"]
    assert order["fields"]["kind"] == "order" and order["fields"]["quote_id"] == quote["id"]
    assert order["fields"]["total"] == 4155.75 and len(ordered.json()["lines"]) == 2
    source = mgr.get(f"/v1/manager/records/quotes/{quote['id']}").json()
    assert source["fields"]["status"] == "accepted"
    again = mgr.post(f"/v1/manager/quotes/{order['id']}/order")
    assert again.status_code == 422  # an order is not a quote

    url = f"/v1/manager/orders/{order['id']}/status"
    assert mgr.post(url, json={"status": "draft"}).status_code == 422  # accepted → draft
    done = mgr.post(url, json={"status": "fulfilled"}).json()
    assert done["fields"]["status"] == "fulfilled" and done["fields"]["fulfilled_at"]
    refused = mgr.post(url, json={"status": "cancelled"})
    assert refused.json()["error"]["details"]["fields"][0]["code"] == "invalid_transition"
    # the rep's phone has the order and its lines
    rep.sync_down()
    assert rep.records[("quotes", order["id"])]["status"] == "fulfilled"
    # and a phone is held to the same transitions
    v = rep.versions[("quotes", order["id"])]
    back = rep.push_one("quotes", order["id"], {"status": "accepted"}, base_version=v)
    assert back["error"]["details"]["fields"][0]["code"] == "invalid_transition"


def test_bad_products_are_refused(world: World) -> None:
    mgr = Web(world, "mgr_a")
    cid = mgr.create("customers", {"name": "小客户", "status": "potential"})["id"]
    retired = new_id("p")
    world.phone("admin").push_one(
        "products", retired, {"name": "旧款", "price": 1, "active": False}
    )
    for product in (retired, "p-none"):
        body = {"customer_id": cid, "lines": [{"product_id": product, "quantity": 1}]}
        response = mgr.post("/v1/manager/quotes", json=body)
        assert response.status_code == 422, response.text
