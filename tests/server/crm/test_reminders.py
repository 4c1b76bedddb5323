"""Due reminders on the server — kept on every write, listed per user and per team, and
found by due window for the ``reminder.due`` webhook; SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from server.crm.reminders import TEAM_TZ, due_between
from tests.server.conftest import World, customer_fields, new_id
from tests.server.manager.conftest import Web


def _today() -> datetime:
    return datetime.now(TEAM_TZ)


def test_reminders_of_tasks_contracts_and_follow_ups(world: World) -> None:
    mgr, rep = Web(world, "mgr_a"), world.phone("rep_a2")
    cid = new_id("c")
    today = _today().date()
    rep.push_one("customers", cid, {**customer_fields(), "next_follow_up": today.isoformat()})
    contract, task, later = new_id("k"), new_id("t"), new_id("t")
    ends = (today + timedelta(days=45)).isoformat()
    soon = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    rep.push(
        [
            rep.mutation(
                "contracts",
                contract,
                {
                    "customer_id": cid,
                    "number": "HT-45",
                    "status": "active",
                    "ends_on": ends,
                    "remind_days_before": 60,
                },
            ),
            rep.mutation(
                "tasks",
                task,
                {
                    "customer_id": cid,
                    "title": "回访",
                    "status": "open",
                    "remind_at": soon,
                    "assignee_id": world.users["rep_a1"],  # for a colleague
                },
            ),
            rep.mutation(
                "tasks",
                later,
                {"customer_id": cid, "title": "明天", "status": "open", "remind_at": tomorrow},
            ),
        ]
    )
    team = mgr.get("/v1/manager/reminders").json()["items"]
    mine = {(r["kind"], r["record_id"]) for r in team if r["customer_id"] == cid}
    assert mine == {("follow_up", cid), ("contract", contract), ("task", task)}
    by_id = {r["record_id"]: r for r in team}
    assert by_id[task]["user_id"] == world.users["rep_a1"]
    assert by_id[contract]["user_id"] == world.users["rep_a2"]
    ahead = mgr.get("/v1/manager/reminders", params={"ahead_hours": 48}).json()["items"]
    assert later in {r["record_id"] for r in ahead}
    # per user: the assignee sees the task; its owner does not
    a1 = world.phone("rep_a1")
    own = a1.world.client.get("/v1/reminders", headers=a1.headers).json()["items"]
    assert [r["record_id"] for r in own if r["customer_id"] == cid] == [task]
    own2 = rep.world.client.get("/v1/reminders", headers=rep.headers).json()["items"]
    assert {r["record_id"] for r in own2 if r["customer_id"] == cid} == {cid, contract}
    # another team's manager sees none of it
    other = Web(world, "mgr_b").get("/v1/manager/reminders").json()["items"]
    assert cid not in {r["customer_id"] for r in other}
    # completing the task and moving the follow-up clears them
    rep.sync_down()
    rep.push(
        [
            rep.mutation(
                "tasks", task, {"status": "done"}, base_version=rep.versions[("tasks", task)]
            ),
            rep.mutation(
                "customers",
                cid,
                {"next_follow_up": (today + timedelta(days=7)).isoformat()},
                base_version=rep.versions[("customers", cid)],
            ),
        ]
    )
    left = {r["record_id"] for r in mgr.get("/v1/manager/reminders").json()["items"]}
    assert task not in left and cid not in left and contract in left


def test_due_between_announces_each_reminder_once(world: World) -> None:
    rep = world.phone("rep_a1")
    cid = new_id("c")
    rep.push_one("customers", cid, customer_fields())
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=3)
    task = new_id("t")
    rep.push_one(
        "tasks",
        task,
        {"customer_id": cid, "title": "x", "status": "open", "remind_at": at.isoformat()},
    )
    t = int(at.timestamp() * 1000)
    with world.context.engine.connect() as conn:
        windows = [due_between(conn, t - 60_000 * k, t - 60_000 * (k - 1)) for k in (2, 1, 0)]
    found = [[r.record_id for r in w if r.record_id == task] for w in windows]
    assert found == [[], [task], []]
