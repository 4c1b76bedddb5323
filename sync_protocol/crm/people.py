"""Customers, their contacts and leads (客户、联系人、线索)."""

from __future__ import annotations

from ..schema import DeletePolicy, EntitySchema, Scope
from ._common import CUSTOMER_STATUSES, SOURCES, TIERS, M, T, custom, customer_ref, f, notes

customers = EntitySchema(
    name="customers",
    label="Customer",
    label_zh="客户",
    scope=Scope.OWNER,
    delete_policy=DeletePolicy.EDIT_WINS,
    search_fields=("name", "phone", "mobile", "company", "email"),
    fields={
        "name": f(T.STRING, "Name", "姓名", required=True, max_length=200, searchable=True),
        "kind": f(T.ENUM, "Kind", "类型", choices=("person", "company")),
        "gender": f(T.ENUM, "Gender", "性别", choices=("male", "female", "other")),
        "company": f(T.STRING, "Company", "公司", max_length=200, searchable=True),
        "industry": f(T.STRING, "Industry", "行业", max_length=100),
        "phone": f(T.PHONE, "Phone", "电话", searchable=True),
        "mobile": f(T.PHONE, "Mobile", "手机", searchable=True),
        "email": f(T.EMAIL, "E-mail", "邮箱", max_length=254),
        "address": f(T.STRING, "Address", "地址", max_length=500),
        "city": f(T.STRING, "City", "城市", max_length=100),
        "source": f(T.ENUM, "Source", "来源", choices=SOURCES),
        "status": f(T.ENUM, "Status", "状态", choices=CUSTOMER_STATUSES, required=True),
        "tier": f(T.ENUM, "Tier", "等级", choices=TIERS),
        "tags": f(T.TAGS, "Tags", "标签", merge=M.UNION),
        "custom": f(T.JSON, "Custom fields", "自定义字段"),
        "notes": notes(),
        "owner_id": f(T.REF, "Owner", "负责人", ref="users", read_only=True),
        "next_follow_up": f(T.DATE, "Next follow-up", "下次跟进"),
        "last_contacted_at": f(T.DATETIME, "Last contact", "最近联系", merge=M.MAX),
        "location": f(T.GEO, "Location", "位置"),
    },
)

contacts = EntitySchema(
    name="contacts",
    label="Contact",
    label_zh="联系人",
    scope=Scope.CUSTOMER,
    search_fields=("name", "phone", "email"),
    fields={
        "customer_id": customer_ref(),
        "name": f(T.STRING, "Name", "姓名", required=True, max_length=200),
        "title": f(T.STRING, "Title", "职务", max_length=100),
        "phone": f(T.PHONE, "Phone", "电话"),
        "email": f(T.EMAIL, "E-mail", "邮箱"),
        "is_primary": f(T.BOOLEAN, "Primary", "主要联系人"),
        "birthday": f(T.DATE, "Birthday", "生日"),
        "notes": notes(),
        "custom": custom(),
    },
)

leads = EntitySchema(
    name="leads",
    label="Lead",
    label_zh="线索",
    scope=Scope.OWNER,
    search_fields=("name", "company", "phone", "email"),
    fields={
        "name": f(T.STRING, "Name", "姓名", required=True, max_length=200),
        "company": f(T.STRING, "Company", "公司", max_length=200),
        "phone": f(T.PHONE, "Phone", "电话"),
        "email": f(T.EMAIL, "E-mail", "邮箱"),
        "source": f(T.ENUM, "Source", "来源", choices=SOURCES),
        "campaign_id": f(T.REF, "Campaign", "营销活动", ref="campaigns"),
        "status": f(
            T.ENUM,
            "Status",
            "状态",
            required=True,
            choices=("new", "contacted", "qualified", "disqualified", "converted"),
        ),
        "owner_id": f(T.REF, "Owner", "负责人", ref="users", read_only=True),
        "converted_customer_id": f(T.REF, "Converted to", "转化客户", ref="customers"),
        "converted_opportunity_id": f(
            T.REF, "Converted opportunity", "转化商机", ref="opportunities"
        ),
        "converted_at": f(T.DATETIME, "Converted at", "转化时间"),
        "notes": notes(),
        # v2: what conversion copies to the customer and contact, typed custom fields
        "title": f(T.STRING, "Title", "职务", max_length=100, added_in=2),
        "industry": f(T.STRING, "Industry", "行业", max_length=100, added_in=2),
        "city": f(T.STRING, "City", "城市", max_length=100, added_in=2),
        "converted_contact_id": f(
            T.REF, "Converted contact", "转化联系人", ref="contacts", added_in=2
        ),
        "custom": custom(),
    },
)
