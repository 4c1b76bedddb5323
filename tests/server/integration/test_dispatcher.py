"""The dispatcher driven by hand (no background thread): the outbox is written with the
change and only then, the backoff schedule, giving up after the last attempt, and
cancelling the deliveries of a deactivated webhook — SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import func, select

from server.integration.dispatcher import DispatchConfig, Dispatcher
from server.integration.models import IntegrationEvent, WebhookAttempt, WebhookDelivery
from tests.server.conftest import World, build_world, customer_fields, new_id
from tests.server.manager.conftest import Web


@pytest.fixture
def quiet_world(db_url: str) -> Iterator[World]:
    """A world whose own dispatcher never runs (``webhook_interval_s=0``)."""
    w, client = build_world(db_url, webhook_interval_s=0)
    with client:
        yield w
    w.context.engine.dispose()


class Answers:
    """A transport answering from a list (the HTTP part is tested with a real server in
    test_webhooks.py; here the schedule is the point)."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        status = self.statuses.pop(0) if self.statuses else 200
        if status == 0:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(status)


def _count(world: World, table: type) -> int:
    with world.context.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(table)) or 0)


def test_backoff_then_failure_and_cancellation(quiet_world: World) -> None:
    world = quiet_world
    admin, rep = Web(world, "admin"), world.phone("rep_a1")
    # no webhook: the outbox stays empty
    rep.push_one("customers", new_id("c"), customer_fields())
    assert _count(world, IntegrationEvent) == 0

    hook = admin.post(
        "/v1/integration/webhooks",
        json={"name": "x", "url": "http://erp.invalid/h", "events": ["record.changed"]},
    ).json()
    # a refused push leaves no event; an accepted one exactly one
    twin = customer_fields()
    rep.push_one("customers", new_id("c"), twin)
    refused = rep.push_one("customers", new_id("c"), {**twin, "name": "同号"})
    assert refused["error"]["code"] == "possible_duplicate"
    assert _count(world, IntegrationEvent) == 1

    answers = Answers(0, 503, 500, 0)
    config = DispatchConfig(retry_base_s=10, retry_max_s=25, max_attempts=4)
    t = 1_000_000_000_000
    now = [t]
    dispatcher = Dispatcher(
        world.context.engine,
        config,
        httpx.Client(transport=httpx.MockTransport(answers)),
        clock=lambda: now[0],
    )
    first = dispatcher.run_once(now_ms=t)
    assert (first.fanned_out, first.attempted, first.delivered) == (1, 1, 0)
    with world.context.sessions() as s:
        d = s.scalars(select(WebhookDelivery)).one()
        wait = d.next_attempt_ms - t
    assert wait == 10_000  # the base wait after attempt 1
    assert dispatcher.run_once(now_ms=t + 1).attempted == 0  # not due yet
    expected_waits = [20_000, 25_000]  # doubled, then capped
    for expected in expected_waits:
        with world.context.sessions() as s:
            due = s.scalars(select(WebhookDelivery)).one().next_attempt_ms
        now[0] = due
        assert dispatcher.run_once(now_ms=due).attempted == 1
        with world.context.sessions() as s:
            d = s.scalars(select(WebhookDelivery)).one()
            last = s.scalars(
                select(WebhookAttempt).order_by(WebhookAttempt.attempt.desc()).limit(1)
            ).one()
        assert d.next_attempt_ms - last.at_ms == expected
    with world.context.sessions() as s:
        due = s.scalars(select(WebhookDelivery)).one().next_attempt_ms
    now[0] = due
    dispatcher.run_once(now_ms=due)
    log = admin.get(f"/v1/integration/webhooks/{hook['id']}/deliveries").json()
    assert log[0]["state"] == "failed" and log[0]["attempts"] == 4
    assert [a["status_code"] for a in log[0]["log"]] == [None, 503, 500, None]
    assert dispatcher.run_once(now_ms=due + 10**9).attempted == 0  # given up: no more tries
    assert len(answers.seen) == 4

    # a deactivated webhook's pending deliveries are cancelled, not sent
    answers.statuses = [503]
    rep.push_one("customers", new_id("c"), customer_fields())
    assert dispatcher.run_once(now_ms=due + 1).attempted == 1  # fanned out, failed once
    admin.delete(f"/v1/integration/webhooks/{hook['id']}")
    sent = len(answers.seen)
    dispatcher.run_once(now_ms=due + 10**9)
    log = admin.get(f"/v1/integration/webhooks/{hook['id']}/deliveries").json()
    assert (log[0]["state"], log[0]["attempts"]) == ("cancelled", 1)
    assert len(answers.seen) == sent
    rep.push_one("customers", new_id("c"), customer_fields())  # no active webhook: no event
    assert dispatcher.run_once(now_ms=due + 2 * 10**9).fanned_out == 0
