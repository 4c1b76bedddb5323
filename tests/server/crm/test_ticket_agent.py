"""A ticket reaches its assigned agent even when the agent does not own the customer:
the agent lists it and moves it on; the customer's phones pull the result — SQLite and
PostgreSQL."""

from __future__ import annotations

from tests.server.conftest import World, customer_fields, new_id


def test_an_agent_of_another_team_gets_and_works_the_ticket(world: World) -> None:
    owner, agent, bystander = world.phone("rep_a1"), world.phone("rep_b1"), world.phone("rep_a2")
    cid, tid, other = new_id("c"), new_id("t"), new_id("t")
    owner.push_one("customers", cid, customer_fields("报修的客户"))
    ticket = {"customer_id": cid, "title": "设备故障", "status": "open", "priority": "high",
              "opened_at": "2026-12-01T08:00:00Z", "assignee_id": world.users["rep_b1"]}  # fmt: skip
    assert owner.push_one("tickets", tid, ticket)["status"] == "applied"
    owner.push_one("tickets", other, {**ticket, "assignee_id": world.users["rep_a2"]})
    client = world.client

    mine = client.get("/v1/tickets/assigned", headers=agent.headers)
    assert mine.status_code == 200, mine.text
    items = mine.json()["items"]
    assert [i["ticket"]["id"] for i in items] == [tid]
    assert items[0]["customer_name"] == "报修的客户"
    assert items[0]["ticket"]["fields"]["sla_due_at"] == "2026-12-01T16:00:00Z"

    done = client.post(
        f"/v1/tickets/{tid}/progress",
        json={"status": "resolved", "comment": "已远程修复"},
        headers=agent.headers,
    )
    assert done.status_code == 200, done.text
    assert done.json()["fields"]["status"] == "resolved" and done.json()["fields"]["resolved_at"]
    assert done.json()["updated_by"] == world.users["rep_b1"]
    owner.sync_down()
    assert owner.records[("tickets", tid)]["status"] == "resolved"
    comments = [f for (c, _), f in owner.records.items() if c == "ticket_comments"]
    assert [c["body"] for c in comments if c["ticket_id"] == tid] == ["已远程修复"]
    # the agent still does not see the customer itself, and nobody else may use the route
    assert ("customers", cid) not in {(c["collection"], c["record_id"]) for c in agent.sync_down()}
    refused = client.post(
        f"/v1/tickets/{tid}/progress", json={"status": "closed"}, headers=bystander.headers
    )
    assert refused.status_code == 404
    assert client.get("/v1/tickets/assigned", headers=agent.headers).json()["items"] == []
    everything = client.get("/v1/tickets/assigned", params={"all": "true"}, headers=agent.headers)
    assert [i["ticket"]["id"] for i in everything.json()["items"]] == [tid]


def _ops(changes: list[dict[str, object]], rid: str) -> list[object]:
    return [c["op"] for c in changes if c["record_id"] == rid]


def test_an_assigned_ticket_reaches_the_agents_phone_offline_and_leaves_when_reassigned(
    world: World,
) -> None:
    owner, agent = world.phone("rep_a1"), world.phone("rep_b1")
    owners_mgr, other_team_mgr = world.phone("mgr_a"), world.phone("mgr_b")
    for phone in (agent, owners_mgr, other_team_mgr):
        phone.sync_down()
    cid, tid = new_id("c"), new_id("t")
    owner.push_one("customers", cid, customer_fields("远方的客户"))
    ticket = {"customer_id": cid, "title": "上门维修", "status": "open", "priority": "normal",
              "opened_at": "2026-12-01T08:00:00Z", "assignee_id": world.users["rep_b1"]}  # fmt: skip
    assert owner.push_one("tickets", tid, ticket)["status"] == "applied"

    got = agent.sync_down()  # by pull, as any record in scope: it works offline from here
    assert _ops(got, tid) == ["upsert"] and agent.records[("tickets", tid)]["title"] == "上门维修"
    assert ("customers", cid) not in agent.records  # the grant is the ticket, not the customer
    other_team_mgr.sync_down()
    assert ("tickets", tid) not in other_team_mgr.records  # nor the agent's team

    # the owner edits it: the agent's phone follows (each version once)
    owner.sync_down()
    v = owner.versions[("tickets", tid)]
    owner.push_one("tickets", tid, {"priority": "high"}, base_version=v)
    assert _ops(agent.sync_down(), tid) == ["upsert"]
    assert agent.records[("tickets", tid)]["priority"] == "high"

    # assigned to the owner's manager instead: it leaves the agent's phone; the manager,
    # who sees it by owner and now by grant too, gets each version once
    owners_mgr.sync_down()
    owner.sync_down()
    v = owner.versions[("tickets", tid)]
    owner.push_one("tickets", tid, {"assignee_id": world.users["mgr_a"]}, base_version=v)
    assert _ops(agent.sync_down(), tid) == ["evict"]
    assert ("tickets", tid) not in agent.records
    assert _ops(owners_mgr.sync_down(), tid) == ["upsert"]
    assert agent.sync_down() == []
    # the owner's manager handing it on keeps it (they see the owner): no eviction for them
    v = owners_mgr.versions[("tickets", tid)]
    owners_mgr.push_one("tickets", tid, {"assignee_id": world.users["rep_b1"]}, base_version=v)
    assert _ops(owners_mgr.sync_down(), tid) == ["upsert"]
    assert _ops(agent.sync_down(), tid) == ["upsert"]
