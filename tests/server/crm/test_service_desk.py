"""The service desk on every write path: SLA due times from the priority, knowledge-base
articles every rep reads and links to tickets, multi-question surveys with checked
answers — SQLite and PostgreSQL."""

from __future__ import annotations

from sync_protocol.service import answer_errors, question_errors, sla_due_at
from tests.server.conftest import World, customer_fields, new_id
from tests.server.manager.conftest import Web

QUESTIONS = {
    "items": [
        {"key": "speed", "label": "响应速度", "type": "score", "required": True},
        {"key": "solved", "label": "问题解决了吗", "type": "choice", "options": ["yes", "no"]},
        {"key": "comment", "label": "建议", "type": "text"},
    ]
}


def test_sla_due_time_follows_the_priority() -> None:
    assert sla_due_at("2026-12-01T08:00:00Z", "urgent") == "2026-12-01T12:00:00Z"
    assert sla_due_at("2026-12-01T08:00:00+08:00", None) == "2026-12-02T08:00:00+08:00"


def test_a_new_open_ticket_gets_its_sla_and_a_stated_one_is_kept(world: World) -> None:
    rep = world.phone("rep_a1")
    cid = new_id("c")
    rep.push_one("customers", cid, customer_fields("报修客户"))
    high, stated, closed = new_id("t"), new_id("t"), new_id("t")
    base = {"customer_id": cid, "title": "不制冷", "opened_at": "2026-12-01T08:00:00Z"}
    rep.push(
        [
            rep.mutation("tickets", high, {**base, "status": "open", "priority": "high"}),
            rep.mutation(
                "tickets",
                stated,
                {
                    **base,
                    "status": "open",
                    "priority": "high",
                    "sla_due_at": "2026-12-05T00:00:00Z",
                },
            ),
            rep.mutation("tickets", closed, {**base, "status": "closed", "priority": "low"}),
        ]
    )
    rep.sync_down()
    assert rep.records[("tickets", high)]["sla_due_at"] == "2026-12-01T16:00:00Z"
    assert rep.records[("tickets", stated)]["sla_due_at"] == "2026-12-05T00:00:00Z"
    assert "sla_due_at" not in rep.records[("tickets", closed)]


def test_every_rep_reads_the_knowledge_base_and_tickets_link_to_it(world: World) -> None:
    mgr = Web(world, "mgr_a")
    article = mgr.create("knowledge_articles", {"title": "空调不制冷", "body": "先检查滤网。"})
    for name in ("rep_a1", "rep_b1"):  # every rep, of every team
        phone = world.phone(name)
        phone.sync_down()
        assert phone.records[("knowledge_articles", article["id"])]["title"] == "空调不制冷"
    rep = world.phone("rep_a1")
    refused = rep.push_one(
        "knowledge_articles", new_id("kb"), {"title": "x", "body": "y"}
    )  # reps read, managers write
    assert refused["error"]["code"] == "forbidden"
    cid, tid = new_id("c"), new_id("t")
    rep.push_one("customers", cid, customer_fields("知识库客户"))
    ticket = {"customer_id": cid, "title": "不制冷", "status": "open"}
    linked = rep.push_one("tickets", tid, {**ticket, "knowledge_article_ids": [article["id"]]})
    assert linked["status"] == "applied", linked
    dangling = rep.push_one(
        "tickets", new_id("t"), {**ticket, "knowledge_article_ids": ["kb-nope"]}
    )
    assert dangling["error"]["details"]["fields"][0]["code"] == "unknown_ref"


def test_surveys_have_several_questions_and_answers_are_checked(world: World) -> None:
    mgr = Web(world, "mgr_a")
    bad = mgr.post(
        "/v1/manager/records/surveys",
        json={
            "fields": {"name": "坏问卷", "questions": {"items": [{"key": "x", "type": "stars"}]}}
        },
    )
    assert bad.status_code == 422
    codes = {e["field"] for e in bad.json()["error"]["details"]["fields"]}
    assert {"questions.items.0.label", "questions.items.0.type"} <= codes
    survey = mgr.create("surveys", {"name": "售后回访", "questions": QUESTIONS, "active": True})
    rep = world.phone("rep_a2")
    rep.sync_down()
    assert rep.records[("surveys", survey["id"])]["name"] == "售后回访"  # reference data
    cid = new_id("c")
    rep.push_one("customers", cid, customer_fields("回访客户"))
    base = {
        "customer_id": cid,
        "survey_id": survey["id"],
        "score": 4,
        "responded_at": "2026-12-02T10:00:00Z",
    }
    good = rep.push_one(
        "satisfaction_responses",
        new_id("sr"),
        {**base, "answers": {"speed": 5, "solved": "yes", "comment": "很快"}},
    )
    assert good["status"] == "applied", good
    for answers, field, code in (
        ({"solved": "yes"}, "answers.speed", "required"),
        ({"speed": 6}, "answers.speed", "invalid"),
        ({"speed": 3, "solved": "maybe"}, "answers.solved", "invalid_choice"),
        ({"speed": 3, "mood": "ok"}, "answers.mood", "unknown_question"),
    ):
        r = rep.push_one("satisfaction_responses", new_id("sr"), {**base, "answers": answers})
        errors = {(e["field"], e["code"]) for e in r["error"]["details"]["fields"]}
        assert (field, code) in errors, (answers, errors)
    nosurvey = rep.push_one(
        "satisfaction_responses", new_id("sr"), {**base, "survey_id": "sv-nope", "answers": {}}
    )
    assert nosurvey["error"]["details"]["fields"][0]["code"] == "unknown_ref"


def test_the_pure_checks() -> None:
    assert question_errors(QUESTIONS) == []
    assert question_errors({"items": []})[0].field == "questions"
    twice = {"items": [QUESTIONS["items"][0], QUESTIONS["items"][0]]}
    assert question_errors(twice)[0].field == "questions.items.1.key"
    assert answer_errors(QUESTIONS, {"speed": True})[0].code == "invalid"  # a bool is no score
    assert answer_errors(QUESTIONS, "5")[0].field == "answers"
