"""The pipeline, products, quotes/orders, campaigns and targets (商机、产品、报价/订单、营销、目标)."""

from __future__ import annotations

from ..schema import DeletePolicy, EntitySchema, Scope
from ._common import MANAGERS, T, custom, customer_ref, f, notes

pipeline_stages = EntitySchema(
    name="pipeline_stages",
    label="Pipeline stage",
    label_zh="销售阶段",
    scope=Scope.REFERENCE,
    write_roles=MANAGERS,
    delete_policy=DeletePolicy.DELETE_WINS,
    fields={
        "name": f(T.STRING, "Name", "名称", required=True, max_length=100),
        "name_zh": f(T.STRING, "Chinese name", "中文名称", max_length=100),
        "position": f(T.INTEGER, "Order", "顺序", required=True, minimum=0),
        "probability": f(T.NUMBER, "Probability", "赢单概率", minimum=0, maximum=1),
        "is_won": f(T.BOOLEAN, "Won", "赢单"),
        "is_lost": f(T.BOOLEAN, "Lost", "输单"),
    },
)

opportunities = EntitySchema(
    name="opportunities",
    label="Opportunity",
    label_zh="商机",
    scope=Scope.CUSTOMER,
    search_fields=("name",),
    fields={
        "customer_id": customer_ref(),
        "name": f(T.STRING, "Name", "名称", required=True, max_length=200),
        "stage_id": f(T.REF, "Stage", "阶段", required=True, ref="pipeline_stages"),
        "amount": f(T.NUMBER, "Amount", "金额", minimum=0),
        "currency": f(T.STRING, "Currency", "币种", max_length=3),
        "probability": f(T.NUMBER, "Probability", "赢单概率", minimum=0, maximum=1),
        "expected_close_date": f(T.DATE, "Expected close", "预计成交日期"),
        "status": f(T.ENUM, "Status", "状态", choices=("open", "won", "lost"), required=True),
        "closed_at": f(T.DATETIME, "Closed at", "成交时间"),
        "lost_reason": f(T.STRING, "Lost reason", "输单原因", max_length=500),
        "product_id": f(T.REF, "Product", "产品", ref="products"),
        "lead_id": f(T.REF, "Lead", "线索", ref="leads"),
        "campaign_id": f(T.REF, "Campaign", "营销活动", ref="campaigns"),
        "notes": notes(),
        "custom": custom(),
    },
)

stage_changes = EntitySchema(
    name="stage_changes",
    label="Stage change",
    label_zh="阶段变更",
    scope=Scope.CUSTOMER,
    append_only=True,
    fields={
        "customer_id": customer_ref(),
        "opportunity_id": f(T.REF, "Opportunity", "商机", required=True, ref="opportunities"),
        "from_stage_id": f(T.REF, "From", "原阶段", ref="pipeline_stages"),
        "to_stage_id": f(T.REF, "To", "新阶段", required=True, ref="pipeline_stages"),
        "changed_at": f(T.DATETIME, "Changed at", "变更时间", required=True),
        "changed_by": f(T.REF, "Changed by", "操作人", ref="users"),
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
        "name": f(T.STRING, "Name", "名称", required=True, max_length=200),
        "sku": f(T.STRING, "SKU", "编码", max_length=64),
        "category": f(T.STRING, "Category", "类别", max_length=100),
        "price": f(T.NUMBER, "Price", "价格", minimum=0),
        "unit": f(T.STRING, "Unit", "单位", max_length=20),
        "active": f(T.BOOLEAN, "Active", "在售"),
        # v2: the price book's per-customer-tier prices, {"high": 90.0, "mid": 95.0}
        # (sync_protocol.orders.catalogue_price).
        "tier_prices": f(T.JSON, "Tier prices", "等级价格", added_in=2),
        "tax_rate": f(T.NUMBER, "Tax rate", "税率", minimum=0, maximum=1, added_in=2),
    },
)

quotes = EntitySchema(
    name="quotes",
    label="Quote / order",
    label_zh="报价/订单",
    scope=Scope.CUSTOMER,
    search_fields=("number",),
    fields={
        "customer_id": customer_ref(),
        "opportunity_id": f(T.REF, "Opportunity", "商机", ref="opportunities"),
        "kind": f(T.ENUM, "Kind", "类型", required=True, choices=("quote", "order")),
        "number": f(T.STRING, "Number", "编号", required=True, max_length=64),
        "status": f(
            T.ENUM,
            "Status",
            "状态",
            required=True,
            choices=("draft", "sent", "accepted", "rejected", "fulfilled", "cancelled"),
        ),
        "currency": f(T.STRING, "Currency", "币种", max_length=3),
        "total": f(T.NUMBER, "Total", "总额", minimum=0),
        "valid_until": f(T.DATE, "Valid until", "有效期至"),
        # v2: order totals by sync_protocol.orders (checked on write: total_mismatch).
        "subtotal": f(T.NUMBER, "Subtotal", "小计", minimum=0, added_in=2),
        "discount_total": f(T.NUMBER, "Discount", "折扣金额", minimum=0, added_in=2),
        "tax_total": f(T.NUMBER, "Tax", "税额", minimum=0, added_in=2),
        "quote_id": f(T.REF, "From quote", "来源报价", ref="quotes", added_in=2),
        "ordered_at": f(T.DATETIME, "Ordered at", "下单时间", added_in=2),
        "fulfilled_at": f(T.DATETIME, "Fulfilled at", "完成时间", added_in=2),
        "notes": notes(),
    },
)

quote_lines = EntitySchema(
    name="quote_lines",
    label="Quote line",
    label_zh="报价明细",
    scope=Scope.CUSTOMER,
    fields={
        "customer_id": customer_ref(),
        "quote_id": f(T.REF, "Quote", "报价单", required=True, ref="quotes"),
        "product_id": f(T.REF, "Product", "产品", required=True, ref="products"),
        "quantity": f(T.NUMBER, "Quantity", "数量", required=True, minimum=0),
        "unit_price": f(T.NUMBER, "Unit price", "单价", required=True, minimum=0),
        "discount": f(T.NUMBER, "Discount", "折扣", minimum=0, maximum=1),
        # v2: priced from the catalogue; totals by sync_protocol.orders.
        "list_price": f(T.NUMBER, "List price", "目录价", minimum=0, added_in=2),
        "tax_rate": f(T.NUMBER, "Tax rate", "税率", minimum=0, maximum=1, added_in=2),
        "line_total": f(T.NUMBER, "Line total", "金额", minimum=0, added_in=2),
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
        "name": f(T.STRING, "Name", "名称", required=True, max_length=200),
        "channel": f(
            T.ENUM,
            "Channel",
            "渠道",
            choices=("event", "email", "social", "advertisement", "telemarketing", "other"),
        ),
        "status": f(
            T.ENUM, "Status", "状态", choices=("planned", "active", "finished", "cancelled")
        ),
        "starts_on": f(T.DATE, "Starts", "开始日期"),
        "ends_on": f(T.DATE, "Ends", "结束日期"),
        "budget": f(T.NUMBER, "Budget", "预算", minimum=0),
        "cost": f(T.NUMBER, "Actual cost", "实际成本", minimum=0),
        "target": f(T.JSON, "Targeting", "目标客户条件"),
        "notes": notes(),
    },
)

#: A customer's participation in a campaign. It follows the customer (scope
#: ``customer``): a rep sees the members — and their revenue — of their own customers
#: only, and a member moves with its customer. A lead's campaign is ``leads.campaign_id``;
#: ``lead_id`` here names the lead a member came from.
campaign_members = EntitySchema(
    name="campaign_members",
    label="Campaign member",
    label_zh="活动成员",
    scope=Scope.CUSTOMER,
    write_roles=MANAGERS,
    fields={
        "campaign_id": f(T.REF, "Campaign", "营销活动", required=True, ref="campaigns"),
        "customer_id": customer_ref(),
        "lead_id": f(T.REF, "Lead", "线索", ref="leads"),
        "status": f(
            T.ENUM,
            "Status",
            "状态",
            required=True,
            choices=("invited", "responded", "attended", "converted"),
        ),
        "converted_at": f(T.DATETIME, "Converted at", "转化时间"),
        "revenue": f(T.NUMBER, "Revenue", "收入", minimum=0),
    },
)

sales_targets = EntitySchema(
    name="sales_targets",
    label="Sales target",
    label_zh="销售目标",
    scope=Scope.OWNER,
    write_roles=MANAGERS,
    fields={
        "owner_id": f(T.REF, "Rep", "销售", ref="users", required=True),
        "period_start": f(T.DATE, "Period start", "开始日期", required=True),
        "period_end": f(T.DATE, "Period end", "结束日期", required=True),
        "amount": f(T.NUMBER, "Target amount", "目标金额", required=True, minimum=0),
        "product_id": f(T.REF, "Product", "产品", ref="products"),
    },
)
