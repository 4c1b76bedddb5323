"""Activities, tasks and contracts (跟进记录、任务提醒、合同)."""

from __future__ import annotations

from ..schema import DeletePolicy, EntitySchema, Scope
from ._common import M, T, customer_ref, f, notes

activities = EntitySchema(
    name="activities",
    label="Activity",
    label_zh="跟进记录",
    scope=Scope.CUSTOMER,
    append_only=True,
    search_fields=("subject", "notes"),
    fields={
        "customer_id": customer_ref(),
        "type": f(
            T.ENUM,
            "Type",
            "类型",
            required=True,
            choices=("call", "email", "visit", "meeting", "note"),
        ),
        "occurred_at": f(T.DATETIME, "When", "时间", required=True),
        "duration_minutes": f(T.INTEGER, "Duration (min)", "时长(分钟)", minimum=0),
        "subject": f(T.STRING, "Subject", "主题", max_length=200),
        "notes": f(T.TEXT, "Notes", "记录"),
        "outcome": f(
            T.ENUM,
            "Outcome",
            "结果",
            choices=("positive", "neutral", "negative", "no_answer", "follow_up"),
        ),
        "contact_id": f(T.REF, "Contact", "联系人", ref="contacts"),
        "opportunity_id": f(T.REF, "Opportunity", "商机", ref="opportunities"),
        "check_in": f(T.GEO, "Check-in", "签到位置"),
        "next_follow_up": f(T.DATE, "Next follow-up", "下次跟进"),
        "author_id": f(T.REF, "Author", "记录人", ref="users"),
    },
)

tasks = EntitySchema(
    name="tasks",
    label="Task",
    label_zh="任务提醒",
    scope=Scope.CUSTOMER,
    search_fields=("title",),
    fields={
        "customer_id": customer_ref(),
        "title": f(T.STRING, "Title", "标题", required=True, max_length=200),
        "due_at": f(T.DATETIME, "Due", "截止时间"),
        "remind_at": f(T.DATETIME, "Remind at", "提醒时间"),
        "status": f(T.ENUM, "Status", "状态", required=True, choices=("open", "done", "cancelled")),
        "priority": f(T.ENUM, "Priority", "优先级", choices=("low", "normal", "high")),
        "activity_id": f(T.REF, "From activity", "来源记录", ref="activities"),
        "assignee_id": f(T.REF, "Assignee", "执行人", ref="users"),
        "completed_at": f(T.DATETIME, "Completed", "完成时间"),
        "notes": notes(),
    },
)

contracts = EntitySchema(
    name="contracts",
    label="Contract",
    label_zh="合同",
    scope=Scope.CUSTOMER,
    delete_policy=DeletePolicy.MANUAL,
    search_fields=("number", "title"),
    fields={
        "customer_id": customer_ref(),
        "opportunity_id": f(T.REF, "Opportunity", "商机", ref="opportunities"),
        "number": f(T.STRING, "Number", "合同编号", required=True, max_length=64),
        "title": f(T.STRING, "Title", "标题", max_length=200),
        "amount": f(T.NUMBER, "Amount", "金额", minimum=0, merge=M.MANUAL),
        "currency": f(T.STRING, "Currency", "币种", max_length=3),
        "status": f(
            T.ENUM,
            "Status",
            "状态",
            required=True,
            choices=("draft", "signed", "active", "expired", "terminated"),
        ),
        "signed_on": f(T.DATE, "Signed", "签订日期"),
        "starts_on": f(T.DATE, "Starts", "开始日期"),
        "ends_on": f(T.DATE, "Ends", "到期日期", merge=M.MANUAL),
        "remind_days_before": f(
            T.INTEGER, "Remind days before", "提前提醒天数", minimum=0, maximum=365
        ),
        "notes": notes(),
    },
)
