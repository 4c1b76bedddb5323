"""The demo data fills every report and the service-desk and integration screens: each
manager report answers with figures, not zeros — SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from fastapi.testclient import TestClient

from server.app import create_app
from server.demo import seed_demo
from server.migrate import upgrade
from server.settings import DEMO_PASSWORD, Settings
from tests.support.server_proc import TEST_SECRET


def test_the_demo_fills_every_report(db_url: str) -> None:
    upgrade(db_url)
    app = create_app(Settings(env="test", database_url=db_url, secret_key=TEST_SECRET))
    with app.state.fieldsync.sessions() as session:
        counts = seed_demo(session, customers=60)
    for collection in ("campaigns", "campaign_members", "leads", "stage_changes", "quotes",
                       "quote_lines", "surveys", "satisfaction_responses", "tickets"):  # fmt: skip
        assert counts.get(collection), collection
    with TestClient(app) as client:
        login = client.post(
            "/v1/auth/login",
            json={"username": "manager", "password": DEMO_PASSWORD, "device_id": "demo-check"},
        )
        h = {"Authorization": f"Bearer {login.json()['access_token']}"}
        today = date.today()
        window = {
            "start": (today - timedelta(days=120)).isoformat(),
            "end": (today + timedelta(days=120)).isoformat(),
        }

        def report(name: str, **params: Any) -> dict[str, Any]:
            r = client.get(f"/v1/manager/reports/{name}", params=params, headers=h)
            assert r.status_code == 200, r.text
            body: dict[str, Any] = r.json()
            return body

        funnel = report("funnel")
        assert funnel["total_count"] > 0 and funnel["won"] > 0
        assert any(s["advanced"] for s in funnel["stages"])  # stage history exists
        reps = report("rep-performance", **window)["reps"]
        assert any(r["won_amount"] for r in reps) and any(r["target"] for r in reps)
        products = report("product-performance", **window)["products"]
        assert any(p["won_amount"] for p in products) and any(p["orders"] for p in products)
        assert any(p["target"] for p in products)
        customers = report("customers", lang="zh")
        assert customers["total"] == 60 and len(customers["dimensions"]) >= 4
        campaigns = report("campaigns")["campaigns"]
        assert any(c["members"] and c["revenue"] for c in campaigns)
        assert any(c["leads"] and c["converted_leads"] for c in campaigns)
        tickets = report("tickets")
        assert tickets["total"] > 0 and tickets["avg_resolution_hours"]
        assert tickets["avg_satisfaction"] and tickets["survey_responses"]
        assert tickets["sla_met_rate"] is not None
        leads = report("lead-conversion")
        assert any(s["converted"] for s in leads["sources"])
        assert report("contracts-expiring", days=30)["contracts"]
        overdue = report("overdue-follow-ups")["reps"]
        assert any(r["overdue_tasks"] or r["overdue_follow_ups"] for r in overdue)
        reminders = client.get("/v1/manager/reminders", headers=h).json()["items"]
        assert reminders
