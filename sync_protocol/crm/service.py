"""The service desk: tickets, comments, knowledge base, surveys and satisfaction
(工单、知识库、问卷、满意度).

v3: ``tickets.sla_due_at`` (filled from the priority on creation when unstated —
:mod:`sync_protocol.service`) and ``knowledge_article_ids`` (answers linked to the
ticket); ``surveys`` with their questions; ``satisfaction_responses.survey_id`` and
``answers`` (checked against the survey's questions)."""

from __future__ import annotations

from ..schema import EntitySchema, Scope
from ._common import MANAGERS, M, T, custom, customer_ref, f

tickets = EntitySchema(
    name="tickets",
    label="Ticket",
    label_zh="工单",
    scope=Scope.CUSTOMER,
    search_fields=("title",),
    fields={
        "customer_id": customer_ref(),
        "title": f(T.STRING, "Title", "标题", required=True, max_length=200),
        "description": f(T.TEXT, "Description", "描述"),
        "status": f(
            T.ENUM,
            "Status",
            "状态",
            required=True,
            choices=("open", "in_progress", "resolved", "closed"),
        ),
        "priority": f(T.ENUM, "Priority", "优先级", choices=("low", "normal", "high", "urgent")),
        "assignee_id": f(T.REF, "Assignee", "处理人", ref="users"),
        "opened_at": f(T.DATETIME, "Opened", "创建时间"),
        "resolved_at": f(T.DATETIME, "Resolved", "解决时间"),
        "satisfaction": f(T.INTEGER, "Satisfaction", "满意度", minimum=1, maximum=5),
        "custom": custom(),
        "sla_due_at": f(T.DATETIME, "SLA due", "SLA 截止时间", added_in=3),
        "knowledge_article_ids": f(
            T.TAGS, "Knowledge articles", "关联知识", merge=M.UNION, added_in=3
        ),
    },
)

ticket_comments = EntitySchema(
    name="ticket_comments",
    label="Ticket comment",
    label_zh="工单评论",
    scope=Scope.CUSTOMER,
    append_only=True,
    fields={
        "customer_id": customer_ref(),
        "ticket_id": f(T.REF, "Ticket", "工单", required=True, ref="tickets"),
        "body": f(T.TEXT, "Comment", "内容", required=True),
        "author_id": f(T.REF, "Author", "作者", ref="users"),
        "created_at": f(T.DATETIME, "Created", "时间", required=True),
    },
)

knowledge_articles = EntitySchema(
    name="knowledge_articles",
    label="Knowledge article",
    label_zh="知识库",
    scope=Scope.REFERENCE,
    write_roles=MANAGERS,
    search_fields=("title", "body"),
    fields={
        "title": f(T.STRING, "Title", "标题", required=True, max_length=200),
        "body": f(T.TEXT, "Body", "内容", required=True, max_length=100_000),
        "category": f(T.STRING, "Category", "分类", max_length=100),
        "tags": f(T.TAGS, "Tags", "标签", merge=M.UNION),
    },
)

surveys = EntitySchema(
    name="surveys",
    label="Survey",
    label_zh="满意度问卷",
    scope=Scope.REFERENCE,
    write_roles=MANAGERS,
    search_fields=("name",),
    added_in=3,
    fields={
        "name": f(T.STRING, "Name", "名称", required=True, max_length=200),
        "questions": f(T.JSON, "Questions", "问题", required=True),
        "active": f(T.BOOLEAN, "Active", "启用"),
    },
)

satisfaction_responses = EntitySchema(
    name="satisfaction_responses",
    label="Satisfaction response",
    label_zh="满意度回访",
    scope=Scope.CUSTOMER,
    append_only=True,
    fields={
        "customer_id": customer_ref(),
        "ticket_id": f(T.REF, "Ticket", "工单", ref="tickets"),
        "survey": f(T.STRING, "Survey", "问卷", max_length=100),
        "score": f(T.INTEGER, "Score", "评分", required=True, minimum=1, maximum=5),
        "comment": f(T.TEXT, "Comment", "意见"),
        "responded_at": f(T.DATETIME, "Responded", "回访时间", required=True),
        "survey_id": f(T.REF, "Survey", "问卷", ref="surveys", added_in=3),
        "answers": f(T.JSON, "Answers", "回答", added_in=3),
    },
)
