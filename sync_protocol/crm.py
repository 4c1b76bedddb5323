"""The CRM's entity schemas (客户、联系人、线索、商机、拜访、任务、合同、工单 …).

Declared once; used by the server, the SDK and the app. Conventions:

* every customer-owned entity carries ``customer_id`` (scope follows the customer, and
  reassigning a customer moves everything hanging off it);
* ``owner_id`` is read-only for devices: it moves only through reassignment;
* activities, stage changes, ticket comments and satisfaction responses are append-only
  events — the commonest field action never conflicts;
* notes are append-only text and tags merge as sets;
* money amounts and the pipeline stage are last-writer-wins; a deal's ``amount`` is
  ``manual`` on contracts (a signed figure must be decided by a person).
"""

from __future__ import annotations

from .schema import (
    DeletePolicy,
    EntitySchema,
    FieldSpec,
    FieldType,
    MergePolicy,
    SchemaRegistry,
    Scope,
)

T = FieldType
M = MergePolicy

MANAGERS = frozenset({"manager", "admin"})

CUSTOMER_STATUSES = ("potential", "intent", "closed")
TIERS = ("high", "mid", "low")
SOURCES = ("referral", "web", "event", "cold_call", "advertisement", "partner", "campaign", "other")


def _f(t: FieldType, label: str = "", zh: str = "", **kw: object) -> FieldSpec:
    return FieldSpec(type=t, label=label, label_zh=zh, **kw)  # type: ignore[arg-type]


def _notes() -> FieldSpec:
    return _f(T.TEXT, "Notes", "备注", merge=M.APPEND)


def _customer_ref() -> FieldSpec:
    return _f(T.REF, "Customer", "客户", required=True, ref="customers", read_only=False)


customers = EntitySchema(
    name="customers",
    label="Customer",
    label_zh="客户",
    scope=Scope.OWNER,
    delete_policy=DeletePolicy.EDIT_WINS,
    search_fields=("name", "phone", "mobile", "company", "email"),
    fields={
        "name": _f(T.STRING, "Name", "姓名", required=True, max_length=200, searchable=True),
        "kind": _f(T.ENUM, "Kind", "类型", choices=("person", "company")),
        "gender": _f(T.ENUM, "Gender", "性别", choices=("male", "female", "other")),
        "company": _f(T.STRING, "Company", "公司", max_length=200, searchable=True),
        "industry": _f(T.STRING, "Industry", "行业", max_length=100),
        "phone": _f(T.PHONE, "Phone", "电话", searchable=True),
        "mobile": _f(T.PHONE, "Mobile", "手机", searchable=True),
        "email": _f(T.EMAIL, "E-mail", "邮箱", max_length=254),
        "address": _f(T.STRING, "Address", "地址", max_length=500),
        "city": _f(T.STRING, "City", "城市", max_length=100),
        "source": _f(T.ENUM, "Source", "来源", choices=SOURCES),
        "status": _f(T.ENUM, "Status", "状态", choices=CUSTOMER_STATUSES, required=True),
        "tier": _f(T.ENUM, "Tier", "等级", choices=TIERS),
        "tags": _f(T.TAGS, "Tags", "标签", merge=M.UNION),
        "custom": _f(T.JSON, "Custom fields", "自定义字段"),
        "notes": _notes(),
        "owner_id": _f(T.REF, "Owner", "负责人", ref="users", read_only=True),
        "next_follow_up": _f(T.DATE, "Next follow-up", "下次跟进"),
        "last_contacted_at": _f(T.DATETIME, "Last contact", "最近联系", merge=M.MAX),
        "location": _f(T.GEO, "Location", "位置"),
    },
)

contacts = EntitySchema(
    name="contacts",
    label="Contact",
    label_zh="联系人",
    scope=Scope.CUSTOMER,
    search_fields=("name", "phone", "email"),
    fields={
        "customer_id": _customer_ref(),
        "name": _f(T.STRING, "Name", "姓名", required=True, max_length=200),
        "title": _f(T.STRING, "Title", "职务", max_length=100),
        "phone": _f(T.PHONE, "Phone", "电话"),
        "email": _f(T.EMAIL, "E-mail", "邮箱"),
        "is_primary": _f(T.BOOLEAN, "Primary", "主要联系人"),
        "birthday": _f(T.DATE, "Birthday", "生日"),
        "notes": _notes(),
    },
)

leads = EntitySchema(
    name="leads",
    label="Lead",
    label_zh="线索",
    scope=Scope.OWNER,
    search_fields=("name", "company", "phone", "email"),
    fields={
        "name": _f(T.STRING, "Name", "姓名", required=True, max_length=200),
        "company": _f(T.STRING, "Company", "公司", max_length=200),
        "phone": _f(T.PHONE, "Phone", "电话"),
        "email": _f(T.EMAIL, "E-mail", "邮箱"),
        "source": _f(T.ENUM, "Source", "来源", choices=SOURCES),
        "campaign_id": _f(T.REF, "Campaign", "营销活动", ref="campaigns"),
        "status": _f(
            T.ENUM,
            "Status",
            "状态",
            required=True,
            choices=("new", "contacted", "qualified", "disqualified", "converted"),
        ),
        "owner_id": _f(T.REF, "Owner", "负责人", ref="users", read_only=True),
        "converted_customer_id": _f(T.REF, "Converted to", "转化客户", ref="customers"),
        "converted_opportunity_id": _f(
            T.REF, "Converted opportunity", "转化商机", ref="opportunities"
        ),
        "converted_at": _f(T.DATETIME, "Converted at", "转化时间"),
        "notes": _notes(),
    },
)

pipeline_stages = EntitySchema(
    name="pipeline_stages",
    label="Pipeline stage",
    label_zh="销售阶段",
    scope=Scope.REFERENCE,
    write_roles=MANAGERS,
    delete_policy=DeletePolicy.DELETE_WINS,
    fields={
        "name": _f(T.STRING, "Name", "名称", required=True, max_length=100),
        "name_zh": _f(T.STRING, "Chinese name", "中文名称", max_length=100),
        "position": _f(T.INTEGER, "Order", "顺序", required=True, minimum=0),
        "probability": _f(T.NUMBER, "Probability", "赢单概率", minimum=0, maximum=1),
        "is_won": _f(T.BOOLEAN, "Won", "赢单"),
        "is_lost": _f(T.BOOLEAN, "Lost", "输单"),
    },
)

opportunities = EntitySchema(
    name="opportunities",
    label="Opportunity",
    label_zh="商机",
    scope=Scope.CUSTOMER,
    search_fields=("name",),
    fields={
        "customer_id": _customer_ref(),
        "name": _f(T.STRING, "Name", "名称", required=True, max_length=200),
        "stage_id": _f(T.REF, "Stage", "阶段", required=True, ref="pipeline_stages"),
        "amount": _f(T.NUMBER, "Amount", "金额", minimum=0),
        "currency": _f(T.STRING, "Currency", "币种", max_length=3),
        "probability": _f(T.NUMBER, "Probability", "赢单概率", minimum=0, maximum=1),
        "expected_close_date": _f(T.DATE, "Expected close", "预计成交日期"),
        "status": _f(T.ENUM, "Status", "状态", choices=("open", "won", "lost"), required=True),
        "closed_at": _f(T.DATETIME, "Closed at", "成交时间"),
        "lost_reason": _f(T.STRING, "Lost reason", "输单原因", max_length=500),
        "product_id": _f(T.REF, "Product", "产品", ref="products"),
        "lead_id": _f(T.REF, "Lead", "线索", ref="leads"),
        "campaign_id": _f(T.REF, "Campaign", "营销活动", ref="campaigns"),
        "notes": _notes(),
    },
)

stage_changes = EntitySchema(
    name="stage_changes",
    label="Stage change",
    label_zh="阶段变更",
    scope=Scope.CUSTOMER,
    append_only=True,
    fields={
        "customer_id": _customer_ref(),
        "opportunity_id": _f(T.REF, "Opportunity", "商机", required=True, ref="opportunities"),
        "from_stage_id": _f(T.REF, "From", "原阶段", ref="pipeline_stages"),
        "to_stage_id": _f(T.REF, "To", "新阶段", required=True, ref="pipeline_stages"),
        "changed_at": _f(T.DATETIME, "Changed at", "变更时间", required=True),
        "changed_by": _f(T.REF, "Changed by", "操作人", ref="users"),
    },
)

activities = EntitySchema(
    name="activities",
    label="Activity",
    label_zh="跟进记录",
    scope=Scope.CUSTOMER,
    append_only=True,
    search_fields=("subject", "notes"),
    fields={
        "customer_id": _customer_ref(),
        "type": _f(
            T.ENUM,
            "Type",
            "类型",
            required=True,
            choices=("call", "email", "visit", "meeting", "note"),
        ),
        "occurred_at": _f(T.DATETIME, "When", "时间", required=True),
        "duration_minutes": _f(T.INTEGER, "Duration (min)", "时长(分钟)", minimum=0),
        "subject": _f(T.STRING, "Subject", "主题", max_length=200),
        "notes": _f(T.TEXT, "Notes", "记录"),
        "outcome": _f(
            T.ENUM,
            "Outcome",
            "结果",
            choices=("positive", "neutral", "negative", "no_answer", "follow_up"),
        ),
        "contact_id": _f(T.REF, "Contact", "联系人", ref="contacts"),
        "opportunity_id": _f(T.REF, "Opportunity", "商机", ref="opportunities"),
        "check_in": _f(T.GEO, "Check-in", "签到位置"),
        "next_follow_up": _f(T.DATE, "Next follow-up", "下次跟进"),
        "author_id": _f(T.REF, "Author", "记录人", ref="users"),
    },
)

tasks = EntitySchema(
    name="tasks",
    label="Task",
    label_zh="任务提醒",
    scope=Scope.CUSTOMER,
    search_fields=("title",),
    fields={
        "customer_id": _customer_ref(),
        "title": _f(T.STRING, "Title", "标题", required=True, max_length=200),
        "due_at": _f(T.DATETIME, "Due", "截止时间"),
        "remind_at": _f(T.DATETIME, "Remind at", "提醒时间"),
        "status": _f(
            T.ENUM, "Status", "状态", required=True, choices=("open", "done", "cancelled")
        ),
        "priority": _f(T.ENUM, "Priority", "优先级", choices=("low", "normal", "high")),
        "activity_id": _f(T.REF, "From activity", "来源记录", ref="activities"),
        "assignee_id": _f(T.REF, "Assignee", "执行人", ref="users"),
        "completed_at": _f(T.DATETIME, "Completed", "完成时间"),
        "notes": _notes(),
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
        "customer_id": _customer_ref(),
        "opportunity_id": _f(T.REF, "Opportunity", "商机", ref="opportunities"),
        "number": _f(T.STRING, "Number", "合同编号", required=True, max_length=64),
        "title": _f(T.STRING, "Title", "标题", max_length=200),
        "amount": _f(T.NUMBER, "Amount", "金额", minimum=0, merge=M.MANUAL),
        "currency": _f(T.STRING, "Currency", "币种", max_length=3),
        "status": _f(
            T.ENUM,
            "Status",
            "状态",
            required=True,
            choices=("draft", "signed", "active", "expired", "terminated"),
        ),
        "signed_on": _f(T.DATE, "Signed", "签订日期"),
        "starts_on": _f(T.DATE, "Starts", "开始日期"),
        "ends_on": _f(T.DATE, "Ends", "到期日期", merge=M.MANUAL),
        "remind_days_before": _f(
            T.INTEGER, "Remind days before", "提前提醒天数", minimum=0, maximum=365
        ),
        "notes": _notes(),
    },
)

products = EntitySchema(
    name="products",
    label="Product",
    label_zh="产品",
    scope=Scope.REFERENCE,
    write_roles=MANAGERS,
    search_fields=("name", "sku"),
    fields={
        "name": _f(T.STRING, "Name", "名称", required=True, max_length=200),
        "sku": _f(T.STRING, "SKU", "编码", max_length=64),
        "category": _f(T.STRING, "Category", "类别", max_length=100),
        "price": _f(T.NUMBER, "Price", "价格", minimum=0),
        "unit": _f(T.STRING, "Unit", "单位", max_length=20),
        "active": _f(T.BOOLEAN, "Active", "在售"),
    },
)

quotes = EntitySchema(
    name="quotes",
    label="Quote / order",
    label_zh="报价/订单",
    scope=Scope.CUSTOMER,
    search_fields=("number",),
    fields={
        "customer_id": _customer_ref(),
        "opportunity_id": _f(T.REF, "Opportunity", "商机", ref="opportunities"),
        "kind": _f(T.ENUM, "Kind", "类型", required=True, choices=("quote", "order")),
        "number": _f(T.STRING, "Number", "编号", required=True, max_length=64),
        "status": _f(
            T.ENUM,
            "Status",
            "状态",
            required=True,
            choices=("draft", "sent", "accepted", "rejected", "fulfilled", "cancelled"),
        ),
        "currency": _f(T.STRING, "Currency", "币种", max_length=3),
        "total": _f(T.NUMBER, "Total", "总额", minimum=0),
        "valid_until": _f(T.DATE, "Valid until", "有效期至"),
        "notes": _notes(),
    },
)

quote_lines = EntitySchema(
    name="quote_lines",
    label="Quote line",
    label_zh="报价明细",
    scope=Scope.CUSTOMER,
    fields={
        "customer_id": _customer_ref(),
        "quote_id": _f(T.REF, "Quote", "报价单", required=True, ref="quotes"),
        "product_id": _f(T.REF, "Product", "产品", required=True, ref="products"),
        "quantity": _f(T.NUMBER, "Quantity", "数量", required=True, minimum=0),
        "unit_price": _f(T.NUMBER, "Unit price", "单价", required=True, minimum=0),
        "discount": _f(T.NUMBER, "Discount", "折扣", minimum=0, maximum=1),
    },
)

campaigns = EntitySchema(
    name="campaigns",
    label="Campaign",
    label_zh="营销活动",
    scope=Scope.REFERENCE,
    write_roles=MANAGERS,
    search_fields=("name",),
    fields={
        "name": _f(T.STRING, "Name", "名称", required=True, max_length=200),
        "channel": _f(
            T.ENUM,
            "Channel",
            "渠道",
            choices=("event", "email", "social", "advertisement", "telemarketing", "other"),
        ),
        "status": _f(
            T.ENUM, "Status", "状态", choices=("planned", "active", "finished", "cancelled")
        ),
        "starts_on": _f(T.DATE, "Starts", "开始日期"),
        "ends_on": _f(T.DATE, "Ends", "结束日期"),
        "budget": _f(T.NUMBER, "Budget", "预算", minimum=0),
        "cost": _f(T.NUMBER, "Actual cost", "实际成本", minimum=0),
        "target": _f(T.JSON, "Targeting", "目标客户条件"),
        "notes": _notes(),
    },
)

campaign_members = EntitySchema(
    name="campaign_members",
    label="Campaign member",
    label_zh="活动成员",
    scope=Scope.REFERENCE,
    write_roles=MANAGERS,
    fields={
        "campaign_id": _f(T.REF, "Campaign", "营销活动", required=True, ref="campaigns"),
        "customer_id": _f(T.REF, "Customer", "客户", ref="customers"),
        "lead_id": _f(T.REF, "Lead", "线索", ref="leads"),
        "status": _f(
            T.ENUM,
            "Status",
            "状态",
            required=True,
            choices=("invited", "responded", "attended", "converted"),
        ),
        "converted_at": _f(T.DATETIME, "Converted at", "转化时间"),
        "revenue": _f(T.NUMBER, "Revenue", "收入", minimum=0),
    },
)

tickets = EntitySchema(
    name="tickets",
    label="Ticket",
    label_zh="工单",
    scope=Scope.CUSTOMER,
    search_fields=("title",),
    fields={
        "customer_id": _customer_ref(),
        "title": _f(T.STRING, "Title", "标题", required=True, max_length=200),
        "description": _f(T.TEXT, "Description", "描述"),
        "status": _f(
            T.ENUM,
            "Status",
            "状态",
            required=True,
            choices=("open", "in_progress", "resolved", "closed"),
        ),
        "priority": _f(T.ENUM, "Priority", "优先级", choices=("low", "normal", "high", "urgent")),
        "assignee_id": _f(T.REF, "Assignee", "处理人", ref="users"),
        "opened_at": _f(T.DATETIME, "Opened", "创建时间"),
        "resolved_at": _f(T.DATETIME, "Resolved", "解决时间"),
        "satisfaction": _f(T.INTEGER, "Satisfaction", "满意度", minimum=1, maximum=5),
    },
)

ticket_comments = EntitySchema(
    name="ticket_comments",
    label="Ticket comment",
    label_zh="工单评论",
    scope=Scope.CUSTOMER,
    append_only=True,
    fields={
        "customer_id": _customer_ref(),
        "ticket_id": _f(T.REF, "Ticket", "工单", required=True, ref="tickets"),
        "body": _f(T.TEXT, "Comment", "内容", required=True),
        "author_id": _f(T.REF, "Author", "作者", ref="users"),
        "created_at": _f(T.DATETIME, "Created", "时间", required=True),
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
        "title": _f(T.STRING, "Title", "标题", required=True, max_length=200),
        "body": _f(T.TEXT, "Body", "内容", required=True, max_length=100_000),
        "category": _f(T.STRING, "Category", "分类", max_length=100),
        "tags": _f(T.TAGS, "Tags", "标签", merge=M.UNION),
    },
)

satisfaction_responses = EntitySchema(
    name="satisfaction_responses",
    label="Satisfaction response",
    label_zh="满意度回访",
    scope=Scope.CUSTOMER,
    append_only=True,
    fields={
        "customer_id": _customer_ref(),
        "ticket_id": _f(T.REF, "Ticket", "工单", ref="tickets"),
        "survey": _f(T.STRING, "Survey", "问卷", max_length=100),
        "score": _f(T.INTEGER, "Score", "评分", required=True, minimum=1, maximum=5),
        "comment": _f(T.TEXT, "Comment", "意见"),
        "responded_at": _f(T.DATETIME, "Responded", "回访时间", required=True),
    },
)

sales_targets = EntitySchema(
    name="sales_targets",
    label="Sales target",
    label_zh="销售目标",
    scope=Scope.OWNER,
    write_roles=MANAGERS,
    fields={
        "owner_id": _f(T.REF, "Rep", "销售", ref="users", required=True),
        "period_start": _f(T.DATE, "Period start", "开始日期", required=True),
        "period_end": _f(T.DATE, "Period end", "结束日期", required=True),
        "amount": _f(T.NUMBER, "Target amount", "目标金额", required=True, minimum=0),
        "product_id": _f(T.REF, "Product", "产品", ref="products"),
    },
)

CRM_SCHEMA = SchemaRegistry(
    name="fieldsync-crm",
    version=1,
    min_client_version=1,
    entities={
        e.name: e
        for e in (
            customers,
            contacts,
            leads,
            pipeline_stages,
            opportunities,
            stage_changes,
            activities,
            tasks,
            contracts,
            products,
            quotes,
            quote_lines,
            campaigns,
            campaign_members,
            tickets,
            ticket_comments,
            knowledge_articles,
            satisfaction_responses,
            sales_targets,
        )
    },
)
