"""A rep's day offline against a real server process, through the app's view-models.

Sign in and pull; the server goes away; the rep captures a lead and converts it
(customer + contact + deal), builds an order with two lines, logs a call, creates a
task and adds a contact — all offline; the server comes back, the rep syncs; the
manager, over the manager API, finds every one of them, and the order's totals equal
the server's own computation (sync_protocol.orders on the lines the server stored).
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from mobile_app.i18n import Translator
from mobile_app.viewmodels.account import (
    AccountFiles,
    FirstRunViewModel,
    InitialSyncViewModel,
    sdk_backend,
)
from mobile_app.viewmodels.activities import LogActivityViewModel
from mobile_app.viewmodels.contacts import ContactFormViewModel
from mobile_app.viewmodels.leads import LeadConvertViewModel, LeadFormViewModel
from mobile_app.viewmodels.orders import OrderBuilderViewModel
from mobile_app.viewmodels.settings import SettingsViewModel
from mobile_app.viewmodels.sync_bar import SyncBarViewModel
from mobile_app.viewmodels.tasks import TaskFormViewModel
from sync_protocol.orders import line_amounts_of, order_amounts
from tests.support.server_proc import ServerProcess

pytestmark = pytest.mark.e2e


class Manager:
    def __init__(self, url: str) -> None:
        login = httpx.post(
            f"{url}/v1/auth/login",
            json={
                "username": "manager",
                "password": "fieldsync-demo",
                "device_id": f"mgr-{uuid.uuid4().hex[:8]}",
            },
            timeout=10,
        )
        assert login.status_code == 200, login.text
        self.url = url
        self.headers = {"Authorization": f"Bearer {login.json()['access_token']}"}

    def get(self, collection: str, record_id: str) -> dict[str, Any]:
        r = httpx.get(
            f"{self.url}/v1/manager/records/{collection}/{record_id}",
            headers=self.headers,
            timeout=10,
        )
        assert r.status_code == 200, (collection, record_id, r.text)
        fields: dict[str, Any] = r.json()["fields"]
        return fields

    def status(self, collection: str, record_id: str) -> int:
        return httpx.get(
            f"{self.url}/v1/manager/records/{collection}/{record_id}",
            headers=self.headers,
            timeout=10,
        ).status_code

    def create(self, collection: str, fields: dict[str, Any], *, owner_id: str) -> str:
        """A record entered in the office for ``owner_id``; its id."""
        r = httpx.post(
            f"{self.url}/v1/manager/records/{collection}",
            json={"fields": fields, "owner_id": owner_id},
            headers=self.headers,
            timeout=10,
        )
        assert r.status_code in (200, 201), r.text
        return str(r.json()["id"])

    def convert(self, lead_id: str, existing_customer_id: str) -> None:
        """Convert a lead in the office, into a customer that already exists."""
        r = httpx.post(
            f"{self.url}/v1/manager/leads/{lead_id}/convert",
            json={"existing_customer_id": existing_customer_id},
            headers=self.headers,
            timeout=10,
        )
        assert r.status_code == 200, r.text

    def children(self, collection: str, field: str, value: str) -> list[dict[str, Any]]:
        r = httpx.get(
            f"{self.url}/v1/manager/records/{collection}",
            params={"filter": f"{field}:{value}"},
            headers=self.headers,
            timeout=10,
        )
        assert r.status_code == 200, r.text
        return [item["fields"] for item in r.json()["items"]]


def test_a_day_offline_reaches_the_manager_with_the_servers_totals(
    sqlite_url: str, tmp_path: Path
) -> None:
    server = ServerProcess(
        sqlite_url, seed_demo=True, demo_customers=12, log_path=tmp_path / "server.log"
    )
    server.start()
    try:
        tr = Translator("zh")
        backend = sdk_backend("e2e phone", fast_kdf=True, max_attempts=1)
        first = FirstRunViewModel(backend, AccountFiles(tmp_path / "phone"), tr)
        first.server_url = server.url
        first.username, first.password = "rep1", "fieldsync-demo"
        first.passphrase = first.passphrase_again = "e2e-passphrase"
        session = first.submit()
        assert session is not None, first.error
        assert InitialSyncViewModel(session).run()
        store = session.store
        customer = store.collection("customers").query(order_by="name")[0]
        products = store.collection("products").query(order_by="name")
        assert len(products) >= 2, "the demo catalogue reached the phone"

        server.stop()  # the basement: no signal from here on

        lead = LeadFormViewModel(session)
        lead.set("name", "离线线索 E2E")
        lead.set("company", "离线测试五金有限公司")
        lead.set("phone", "+86 177 0000 4242")
        assert lead.save(), lead.errors
        convert = LeadConvertViewModel(session, str(lead.saved_id))
        convert.deal_name, convert.amount = "离线转化商机", "88000"
        assert convert.convert(), convert.errors
        order = OrderBuilderViewModel(session, customer_id=customer.id)
        assert order.add_line(products[0].id) and order.add_line(products[1].id)
        order.set_line(0, "quantity", "3")
        order.set_line(0, "discount_pct", "7.5")
        order.set_line(1, "quantity", "2")
        order.set_line(1, "unit_price", "99.99")
        assert order.save(), (order.errors, [line.errors for line in order.lines])
        call = LogActivityViewModel(session, customer.id, "call")
        call.notes = "离线电话记录 E2E"
        assert call.save(), call.errors
        task = TaskFormViewModel(session, customer_id=customer.id)
        task.set("title", "离线任务 E2E")
        task.set("due_at", "2026-12-20 10:00")
        assert task.save(), task.errors
        contact = ContactFormViewModel(session, customer_id=customer.id)
        contact.set("name", "离线联系人 E2E")
        contact.set("phone", "+86 177 0000 4343")
        assert contact.save(), contact.errors
        bar = SyncBarViewModel(session)
        bar.refresh()
        assert bar.pending >= 10

        server.start()
        settings = SettingsViewModel(session)
        assert settings.sync_now() is True, settings.error
        bar.refresh()
        assert bar.pending == 0 and bar.rejected == 0, [d.error for d in store.dead_letters()]

        manager = Manager(server.url)
        new_customer = manager.get("customers", convert.result["customer"])
        assert new_customer["name"] == "离线测试五金有限公司"
        assert manager.get("contacts", convert.result["contact"])["name"] == "离线线索 E2E"
        deal = manager.get("opportunities", convert.result["opportunity"])
        assert deal["amount"] == 88000 and deal["lead_id"] == lead.saved_id
        converted = manager.get("leads", str(lead.saved_id))
        assert converted["status"] == "converted"
        assert converted["converted_customer_id"] == convert.result["customer"]
        assert converted["converted_opportunity_id"] == convert.result["opportunity"]

        quote = manager.get("quotes", str(order.quote_id))
        lines = manager.children("quote_lines", "quote_id", str(order.quote_id))
        assert len(lines) == 2
        server_amounts = order_amounts(lines)  # the server's stored lines, its function
        assert Decimal(str(quote["total"])) == server_amounts.total
        assert Decimal(str(quote["tax_total"])) == server_amounts.tax
        for line in lines:
            assert Decimal(str(line["line_total"])) == line_amounts_of(line).total
        assert order.amounts() is not None and order.amounts().total == server_amounts.total  # type: ignore[union-attr]

        assert manager.get("activities", str(call.activity_id))["notes"] == "离线电话记录 E2E"
        assert manager.get("activities", str(call.activity_id))["type"] == "call"
        assert manager.get("tasks", str(task.saved_id))["title"] == "离线任务 E2E"
        assert manager.get("contacts", str(contact.saved_id))["customer_id"] == customer.id
        bar.close()
        store.close()
    finally:
        server.stop()
