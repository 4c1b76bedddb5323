"""Issue 9's end-to-end: the app's view-models against a real server process.

A rep signs in through the first-run view-model and pulls their book; the server goes
away (the basement car park); the rep logs a visit, creates a customer and moves a deal;
the server comes back and the rep syncs; the manager, over plain HTTP, pulls all three.
"""

from __future__ import annotations

import uuid
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
from mobile_app.viewmodels.customers import CustomerFormViewModel, CustomerListViewModel
from mobile_app.viewmodels.pipeline import PipelineViewModel
from mobile_app.viewmodels.settings import SettingsViewModel
from mobile_app.viewmodels.sync_bar import SyncBarViewModel
from mobile_app.viewmodels.visit import LogVisitViewModel
from tests.support.server_proc import ServerProcess

pytestmark = pytest.mark.e2e


def manager_pull(url: str) -> dict[tuple[str, str], dict[str, Any]]:
    """Everything the manager's account sees, by (collection, id), pulled over HTTP."""
    device = f"mgr-{uuid.uuid4().hex[:8]}"
    login = httpx.post(
        f"{url}/v1/auth/login",
        json={"username": "manager", "password": "fieldsync-demo", "device_id": device},
        timeout=10,
    )
    assert login.status_code == 200, login.text
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    checkpoint = None
    for _ in range(200):
        page = httpx.post(
            f"{url}/v1/sync/pull",
            json={
                "device_id": device,
                "schema_version": 1,
                "checkpoint": checkpoint,
                "limit": 1000,
            },
            headers=headers,
            timeout=30,
        )
        assert page.status_code == 200, page.text
        body = page.json()
        for change in body["changes"]:
            if change["op"] == "upsert":
                seen[(change["collection"], change["record_id"])] = change["fields"]
        checkpoint = body["checkpoint"]
        if not body["has_more"]:
            break
    return seen


def test_offline_day_reaches_the_manager(sqlite_url: str, tmp_path: Path) -> None:
    server = ServerProcess(
        sqlite_url, seed_demo=True, demo_customers=12, log_path=tmp_path / "server.log"
    )
    server.start()
    try:
        tr = Translator("en")
        backend = sdk_backend("e2e phone", fast_kdf=True, max_attempts=1)
        first = FirstRunViewModel(backend, AccountFiles(tmp_path / "phone"), tr)
        first.server_url = server.url
        first.username, first.password = "rep1", "fieldsync-demo"
        first.passphrase = first.passphrase_again = "e2e-passphrase"
        session = first.submit()
        assert session is not None, first.error
        assert InitialSyncViewModel(session).run()
        customers = CustomerListViewModel(session)
        customers.refresh()
        assert customers.rows, "the rep's customers were pulled"
        pipeline = PipelineViewModel(session)
        pipeline.refresh()
        deal = next(d for col in pipeline.columns for d in col.deals)
        from_stage = pipeline.stage_of(deal.id)
        to_stage = next(s.id for s in pipeline.stages if s.id != from_stage)

        server.stop()  # no signal from here on

        visit = LogVisitViewModel(session, customers.rows[0].id)
        visit.notes = "离线拜访记录 e2e"
        visit.next_follow_up = "2026-12-01"
        assert visit.save(), visit.errors
        form = CustomerFormViewModel(session)
        form.set("name", "离线新客户 E2E")
        form.set("phone", "+86 138 0000 9999")
        assert form.save(), form.errors
        assert pipeline.move(deal.id, to_stage)
        bar = SyncBarViewModel(session)
        bar.refresh()
        assert (
            bar.pending >= 5
        )  # activity, task, customer follow-up, new customer, deal, stage change
        settings = SettingsViewModel(session)
        assert settings.sync_now() is False
        bar.refresh()
        assert not bar.online and bar.pending >= 5, "an offline sync must keep every write"

        server.start()
        assert settings.sync_now() is True, settings.error
        bar.refresh()
        assert bar.pending == 0 and bar.online and bar.rejected == 0

        seen = manager_pull(server.url)
        activity = seen.get(("activities", str(visit.activity_id)))
        assert activity is not None and activity["notes"] == "离线拜访记录 e2e"
        customer = seen.get(("customers", str(form.saved_id)))
        assert customer is not None and customer["name"] == "离线新客户 E2E"
        assert seen[("opportunities", deal.id)]["stage_id"] == to_stage
        changes = [
            f
            for (c, _), f in seen.items()
            if c == "stage_changes" and f["opportunity_id"] == deal.id
        ]
        assert [(c.get("from_stage_id"), c["to_stage_id"]) for c in changes] == [
            (from_stage, to_stage)
        ]
        bar.close()
        session.store.close()
    finally:
        server.stop()
