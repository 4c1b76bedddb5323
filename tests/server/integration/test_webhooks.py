"""Outbound webhooks end to end: a real HTTP receiver on loopback gets HMAC-signed
events (record changed, lead converted, order placed, reminder due), survives being down
(connection refused) and failing (503) thanks to retries, and the delivery log shows
every attempt — on SQLite and PostgreSQL, with the server's own background dispatcher."""

from __future__ import annotations

import hashlib
import hmac
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from server.integration.signing import verify
from tests.server.conftest import World, customer_fields, new_id
from tests.server.integration.conftest import Received, Receiver, wait_for
from tests.server.manager.conftest import Web

ALL_EVENTS = ["record.changed", "lead.converted", "order.placed", "reminder.due"]


def _subscribe(admin: Web, url: str, **extra: Any) -> dict[str, Any]:
    made = admin.post(
        "/v1/integration/webhooks",
        json={"name": "ERP", "url": url, "events": ALL_EVENTS, **extra},
    )
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    return body


def _log(admin: Web, hook_id: str) -> list[dict[str, Any]]:
    response = admin.get(f"/v1/integration/webhooks/{hook_id}/deliveries")
    assert response.status_code == 200, response.text
    deliveries: list[dict[str, Any]] = response.json()
    return deliveries


def _signed_by(secret: str, r: Received) -> bool:
    """The signature, recomputed here from the documented recipe (not the server's code)."""
    fields = dict(p.split("=", 1) for p in r.headers["x-fieldsync-signature"].split(","))
    mac = hmac.new(secret.encode(), f"{fields['t']}.".encode() + r.body, hashlib.sha256)
    return hmac.compare_digest(mac.hexdigest(), fields["v1"])


def _find(receiver: Receiver, kind: str, key: str, value: str) -> Received | None:
    for r in receiver.events():
        e = r.event
        if e["type"] == kind and e["data"].get(key) == value:
            return r
    return None


def test_a_receiver_that_was_down_gets_every_signed_event_after_retries(
    world: World, receiver: Receiver
) -> None:
    admin, rep = Web(world, "admin"), world.phone("rep_a1")
    hook = _subscribe(admin, receiver.url())
    secret = hook["secret"]
    assert (
        secret.startswith("whsec_")
        and "secret" not in admin.get("/v1/integration/webhooks").json()[-1]
    )

    # The receiver is down: the event waits, every refused attempt is logged.
    cid = new_id("c")
    assert rep.push_one("customers", cid, customer_fields("钱七"))["status"] == "applied"
    wait_for(
        lambda: any(d["attempts"] >= 2 for d in _log(admin, hook["id"])),
        message="two refused attempts",
    )
    # Up again, but answering 503 twice more: still retried.
    receiver.fail_next = 2
    receiver.start()
    got = wait_for(lambda: _find(receiver, "record.changed", "record_id", cid), message="event")
    assert receiver.fail_next == 0

    event = got.event
    assert event["data"]["collection"] == "customers"
    assert event["data"]["fields"]["name"] == "钱七"
    assert event["data"]["owner_id"] == world.users["rep_a1"]
    assert got.headers["x-fieldsync-event"] == "record.changed"
    assert got.headers["x-fieldsync-event-id"] == event["id"]
    assert _signed_by(secret, got)
    assert verify(secret, got.body, got.headers["x-fieldsync-signature"])
    assert not _signed_by("whsec_wrong", got)
    assert not verify(secret, got.body + b" ", got.headers["x-fieldsync-signature"])

    # The delivery log: refused attempts (no status), two 503s, then the success.
    def delivered() -> dict[str, Any] | None:  # the log is written once the POST returned
        found = [d for d in _log(admin, hook["id"]) if d["event_id"] == event["id"]]
        return found[0] if found and found[0]["state"] == "delivered" else None

    delivery = wait_for(delivered)
    assert delivery["delivered_at_ms"]
    log = delivery["log"]
    assert [a["attempt"] for a in log] == list(range(1, len(log) + 1))
    assert delivery["attempts"] == len(log) == int(got.headers["x-fieldsync-attempt"])
    refused = [a for a in log if a["status_code"] is None]
    assert len(refused) >= 2 and all(a["error"] for a in refused)
    assert [a["status_code"] for a in log[len(refused) :]] == [503, 503, 204]
    assert [a["error"] for a in log[len(refused) :]] == ["HTTP 503", "HTTP 503", None]
    times = [a["at_ms"] for a in log]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(g >= 250 for g in gaps), gaps  # backoff: never sooner than the base wait

    admin.delete(f"/v1/integration/webhooks/{hook['id']}")


def test_lead_converted_order_placed_and_reminder_due(world: World, receiver: Receiver) -> None:
    admin, mgr, rep = Web(world, "admin"), Web(world, "mgr_a"), world.phone("rep_a2")
    receiver.start()
    hook = _subscribe(admin, receiver.url("/erp"))

    lid = new_id("l")
    lead = {"name": "孙八", "company": "青松贸易", "phone": "13900000011", "status": "qualified"}
    assert rep.push_one("leads", lid, lead)["status"] == "applied"
    done = mgr.post(f"/v1/manager/leads/{lid}/convert", json={})
    assert done.status_code == 200, done.text
    converted = wait_for(lambda: _find(receiver, "lead.converted", "lead_id", lid))
    data = converted.event["data"]
    assert data["customer_id"] == done.json()["customer_id"]
    assert data["owner_id"] == world.users["rep_a2"]
    assert _signed_by(hook["secret"], converted)

    product = new_id("p")
    world.phone("admin").push_one("products", product, {"name": "净水器", "price": 100})
    quote = mgr.post(
        "/v1/manager/quotes",
        json={
            "customer_id": data["customer_id"],
            "lines": [{"product_id": product, "quantity": 2}],
        },
    )
    assert quote.status_code == 201, quote.text
    order = mgr.post(f"/v1/manager/quotes/{quote.json()['quote']['id']}/order")
    assert order.status_code == 201, order.text
    oid = order.json()["quote"]["id"]
    placed = wait_for(lambda: _find(receiver, "order.placed", "order_id", oid))
    assert placed.event["data"]["total"] == 200 and placed.event["data"]["number"]
    orders = [r.event["data"] for r in receiver.events() if r.event["type"] == "order.placed"]
    assert [o["order_id"] for o in orders] == [oid]  # the quote itself placed nothing

    # A task whose reminder time comes a moment from now is announced once it is due.
    soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    tid = new_id("t")
    task = {
        "customer_id": data["customer_id"],
        "title": "回访",
        "status": "open",
        "remind_at": soon,
    }
    assert rep.push_one("tasks", tid, task)["status"] == "applied"
    due = wait_for(lambda: _find(receiver, "reminder.due", "record_id", tid))
    assert due.event["data"]["kind"] == "task"
    assert due.event["data"]["user_id"] == world.users["rep_a2"]
    wait_for(lambda: all(d["state"] == "delivered" for d in _log(admin, hook["id"])))
    reminders = [r for r in receiver.events() if r.event["type"] == "reminder.due"]
    assert [r.event["data"]["record_id"] for r in reminders].count(tid) == 1

    admin.delete(f"/v1/integration/webhooks/{hook['id']}")


def test_a_webhook_hears_only_its_scope_and_stops_when_deactivated(
    world: World, receiver: Receiver
) -> None:
    admin = Web(world, "admin")
    receiver.start()
    team_b = _subscribe(
        admin, receiver.url("/b"), events=["record.changed"], scope_user_id=world.users["mgr_b"]
    )
    a_customer, b_customer = new_id("c"), new_id("c")
    world.phone("rep_a1").push_one("customers", a_customer, customer_fields("甲队客户"))
    world.phone("rep_b1").push_one("customers", b_customer, customer_fields("乙队客户"))
    wait_for(lambda: _find(receiver, "record.changed", "record_id", b_customer))
    assert _find(receiver, "record.changed", "record_id", a_customer) is None
    assert {r.event["type"] for r in receiver.events()} == {"record.changed"}

    off = admin.delete(f"/v1/integration/webhooks/{team_b['id']}")
    assert off.status_code == 200 and off.json()["active"] is False
    later = new_id("c")
    world.phone("rep_b1").push_one("customers", later, customer_fields("后来的"))
    mark = new_id("c")  # a second, subscribed hook proves the dispatcher ran meanwhile
    probe = _subscribe(admin, receiver.url("/probe"), events=["record.changed"])
    world.phone("rep_b1").push_one("customers", mark, customer_fields("探针"))
    wait_for(lambda: _find(receiver, "record.changed", "record_id", mark))
    assert _find(receiver, "record.changed", "record_id", later) is None
    admin.delete(f"/v1/integration/webhooks/{probe['id']}")


def test_webhook_management_is_for_admins_and_checks_its_input(world: World) -> None:
    admin, mgr = Web(world, "admin"), Web(world, "mgr_a")
    body = {"name": "x", "url": "http://127.0.0.1:9/h", "events": ["record.changed"]}
    assert mgr.post("/v1/integration/webhooks", json=body).status_code == 403
    assert mgr.get("/v1/integration/webhooks").status_code == 403
    bad_url = admin.post("/v1/integration/webhooks", json={**body, "url": "ftp://x/y"})
    assert bad_url.status_code == 422
    assert bad_url.json()["error"]["details"]["fields"][0]["field"] == "url"
    creds = admin.post("/v1/integration/webhooks", json={**body, "url": "http://u:p@h.example/"})
    assert creds.status_code == 422
    bad_event = admin.post("/v1/integration/webhooks", json={**body, "events": ["lead.lost"]})
    assert bad_event.status_code == 422
    nobody = admin.post("/v1/integration/webhooks", json={**body, "scope_user_id": "u-nobody"})
    assert nobody.status_code == 404
    assert admin.get("/v1/integration/webhooks/wh-none/deliveries").status_code == 404
