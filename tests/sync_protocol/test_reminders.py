"""Reminders computed from each record's own fields (sync_protocol.reminders)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from sync_protocol.reminders import due_reminders, reminder_of

CST = timezone(timedelta(hours=8))
NOW = datetime(2026, 12, 2, 9, 0, tzinfo=CST)


def test_a_contract_ending_in_45_days_with_60_days_notice_is_due() -> None:
    ends = (NOW + timedelta(days=45)).date().isoformat()
    fields = {"status": "active", "ends_on": ends, "remind_days_before": 60, "number": "HT-1"}
    reminder = reminder_of("contracts", "k1", fields, tz=CST)
    assert reminder is not None and reminder.is_due(NOW)
    assert reminder.due_at == datetime(2026, 11, 17, tzinfo=CST)  # 60 days before the end
    assert reminder.until == datetime(2027, 1, 17, tzinfo=CST)  # the day after it ends
    assert not reminder.is_due(datetime(2027, 1, 17, tzinfo=CST))
    for other in ({"status": "draft"}, {"remind_days_before": None}, {"ends_on": "soon"}):
        assert reminder_of("contracts", "k1", {**fields, **other}, tz=CST) is None


def test_tasks_and_follow_ups() -> None:
    task = {
        "status": "open",
        "remind_at": "2026-12-02T00:30:00Z",
        "title": "回访",
        "assignee_id": "u2",
    }
    reminder = reminder_of("tasks", "t1", task, tz=CST)
    assert reminder is not None and reminder.user_id == "u2" and reminder.is_due(NOW)
    assert reminder_of("tasks", "t1", {**task, "status": "done"}, tz=CST) is None
    assert reminder_of("tasks", "t1", {**task, "remind_at": "2026-12-02T08:00"}, tz=CST) is None
    follow = reminder_of(
        "customers", "c1", {"name": "张三", "next_follow_up": "2026-12-02"}, tz=CST
    )
    assert follow is not None and follow.due_at == datetime(2026, 12, 2, tzinfo=CST)
    assert follow.as_json()["title"] == "张三"


def test_due_reminders_sorted_with_a_look_ahead() -> None:
    records = [
        ("tasks", "t-late", {"status": "open", "remind_at": "2026-12-03T09:00:00+08:00"}),
        ("tasks", "t-now", {"status": "open", "remind_at": "2026-12-02T08:59:00+08:00"}),
        ("customers", "c1", {"next_follow_up": "2026-11-30"}),
        ("activities", "a1", {"next_follow_up": "2026-11-30"}),  # no reminders
    ]
    assert [r.record_id for r in due_reminders(records, now=NOW, tz=CST)] == ["c1", "t-now"]
    ahead = due_reminders(records, now=NOW.astimezone(UTC), tz=CST, ahead=timedelta(days=1))
    assert [r.record_id for r in ahead] == ["c1", "t-now", "t-late"]
