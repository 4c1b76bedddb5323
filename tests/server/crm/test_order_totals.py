"""Order totals (PLAN contract 2): stated totals are checked with sync_protocol.orders
(``total_mismatch``), unstated ones are maintained by the server — SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sync_protocol.orders import line_fields, order_fields
from tests.server.conftest import Phone, World, customer_fields, new_id


def setup_customer(rep: Phone) -> str:
    """A customer of the rep, and the product ``p-1`` (written by an admin)."""
    admin = rep.world.phone("admin")
    product = {"name": "扫地机器人", "price": 1999, "active": True}
    assert admin.push_one("products", "p-1", product)["status"] in ("applied", "merged")
    cid = new_id("c")
    assert rep.push_one("customers", cid, customer_fields())["status"] == "applied"
    return cid


LINES = [
    {"quantity": 3, "unit_price": 33.335, "discount": 0.1, "tax_rate": 0.13},
    {"quantity": 1, "unit_price": 1999, "discount": 0, "tax_rate": 0.13},
]


def order_group(
    rep: Phone, cid: str, *, group: str, lines: list[dict[str, Any]], total_fix: float = 0
) -> tuple[str, list[dict[str, Any]]]:
    qid = new_id("q")
    totals = order_fields(lines)
    totals["total"] += total_fix
    batch = [
        {
            **rep.mutation(
                "quotes",
                qid,
                {"customer_id": cid, "kind": "order", "number": "SO-1", "status": "draft"} | totals,
            ),
            "group": group,
        }
    ]
    for line in lines:
        fields = {"customer_id": cid, "quote_id": qid, "product_id": "p-1", **line}
        fields |= line_fields(line)
        batch.append({**rep.mutation("quote_lines", new_id("ql"), fields), "group": group})
    return qid, batch


def test_an_order_with_its_lines_in_one_group_is_accepted(world: World) -> None:
    rep = world.phone("rep_a1")
    rep.sync_down()  # the module shares one world: start from now
    cid = setup_customer(rep)
    qid, batch = order_group(rep, cid, group="g-o1", lines=LINES)
    assert [r["status"] for r in rep.push(batch)] == ["applied"] * 3
    rep.sync_down()
    order = rep.records[("quotes", qid)]
    assert order["total"] == 2360.58
    assert (order["subtotal"], order["discount_total"], order["tax_total"]) == (
        2099.01,
        10.0,
        271.57,
    )


def test_a_wrong_line_total_rejects_the_whole_order(world: World) -> None:
    rep = world.phone("rep_a1")
    rep.sync_down()  # the module shares one world: start from now
    cid = setup_customer(rep)
    _qid, batch = order_group(rep, cid, group="g-o2", lines=LINES)
    batch[2]["fields"]["line_total"] = 2258.86
    results = rep.push(batch)
    assert [r["error"]["code"] for r in results] == [
        "group_rejected",
        "group_rejected",
        "total_mismatch",
    ]
    assert results[2]["error"]["details"]["mismatches"] == [
        {"field": "line_total", "sent": 2258.86, "expected": 2258.87}
    ]
    assert results[0]["error"]["details"]["failed_mutation_id"] == batch[2]["id"]
    assert [c for c in rep.sync_down() if c["collection"] not in ("customers", "products")] == []


def test_a_wrong_order_total_is_rejected_with_the_expected_figure(world: World) -> None:
    rep = world.phone("rep_a1")
    rep.sync_down()  # the module shares one world: start from now
    cid = setup_customer(rep)
    _qid, batch = order_group(rep, cid, group="g-o3", lines=LINES, total_fix=0.01)
    results = rep.push(batch)
    assert results[0]["error"]["code"] == "total_mismatch"
    assert results[0]["error"]["details"]["mismatches"] == [
        {"field": "total", "sent": 2360.59, "expected": 2360.58}
    ]
    assert [r["error"]["code"] for r in results[1:]] == ["group_rejected"] * 2


def test_unstated_totals_are_kept_true_by_the_server(world: World) -> None:
    """A schema-v1 client knows neither line_total nor the order totals: it changes a
    line's quantity alone, and the server recomputes the line and its order."""
    rep = world.phone("rep_a1")
    rep.sync_down()  # the module shares one world: start from now
    cid = setup_customer(rep)
    qid, batch = order_group(rep, cid, group="g-o4", lines=LINES)
    rep.push(batch)
    line_id = batch[1]["record_id"]
    rep.sync_down()
    version = rep.versions[("quote_lines", line_id)]
    result = rep.push_one("quote_lines", line_id, {"quantity": 6}, base_version=version)
    assert result["status"] == "applied"
    rep.sync_down()
    assert rep.records[("quote_lines", line_id)]["line_total"] == 203.41  # 200.01 - 20.00 + 23.40
    # the line kept the version its mutation answered
    assert rep.versions[("quote_lines", line_id)] == result["version"]
    assert rep.records[("quotes", qid)]["total"] == 2462.28
    rep.push_one(
        "quote_lines", line_id, op="delete", base_version=rep.versions[("quote_lines", line_id)]
    )
    rep.sync_down()
    assert rep.records[("quotes", qid)]["total"] == 2258.87


def test_a_quote_without_lines_states_a_lump_sum(world: World) -> None:
    rep = world.phone("rep_a1")
    rep.sync_down()  # the module shares one world: start from now
    cid = setup_customer(rep)
    fields = {"customer_id": cid, "kind": "quote", "number": "Q-9", "status": "sent", "total": 5000}
    assert rep.push_one("quotes", new_id("q"), fields)["status"] == "applied"
