"""People's words for the CRM's enum codes, in English and simplified Chinese.

The schema (:mod:`sync_protocol.crm`) holds the codes and the field labels; this table
holds what a person reads for each code — ``customers.status = "intent"`` is "Intent" /
意向客户 — so the server's reports, the console and the app say the same thing. Unknown
codes read as themselves; a missing value reads as "Not set" / 未填写.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

Language = Literal["en", "zh"]
LANGUAGES: tuple[Language, ...] = ("en", "zh")

_SOURCES = {
    "referral": ("Referral", "转介绍"),
    "web": ("Website", "官网"),
    "event": ("Event", "展会活动"),
    "cold_call": ("Cold call", "电话陌拜"),
    "advertisement": ("Advertisement", "广告"),
    "partner": ("Partner", "合作伙伴"),
    "campaign": ("Campaign", "营销活动"),
    "other": ("Other", "其他"),
}
_TICKET_STATUS = {
    "open": ("Open", "待处理"),
    "in_progress": ("In progress", "处理中"),
    "resolved": ("Resolved", "已解决"),
    "closed": ("Closed", "已关闭"),
}
_PRIORITY = {
    "low": ("Low", "低"),
    "normal": ("Normal", "普通"),
    "high": ("High", "高"),
    "urgent": ("Urgent", "紧急"),
}

#: ``"collection.field"`` → code → (English, Chinese).
CHOICES: Mapping[str, Mapping[str, tuple[str, str]]] = {
    "customers.status": {
        "potential": ("Potential", "潜在客户"),
        "intent": ("Intent", "意向客户"),
        "closed": ("Closed", "成交客户"),
    },
    "customers.tier": {"high": ("High", "高"), "mid": ("Mid", "中"), "low": ("Low", "低")},
    "customers.kind": {"person": ("Person", "个人"), "company": ("Company", "企业")},
    "customers.gender": {
        "male": ("Male", "男"),
        "female": ("Female", "女"),
        "other": ("Other", "其他"),
    },
    "customers.source": _SOURCES,
    "leads.source": _SOURCES,
    "leads.status": {
        "new": ("New", "新线索"),
        "contacted": ("Contacted", "已联系"),
        "qualified": ("Qualified", "已确认"),
        "disqualified": ("Disqualified", "无效"),
        "converted": ("Converted", "已转化"),
    },
    "opportunities.status": {
        "open": ("Open", "进行中"),
        "won": ("Won", "赢单"),
        "lost": ("Lost", "输单"),
    },
    "activities.type": {
        "call": ("Call", "电话"),
        "email": ("E-mail", "邮件"),
        "visit": ("Visit", "拜访"),
        "meeting": ("Meeting", "会议"),
        "note": ("Note", "备注"),
    },
    "tasks.status": {
        "open": ("Open", "待办"),
        "done": ("Done", "已完成"),
        "cancelled": ("Cancelled", "已取消"),
    },
    "contracts.status": {
        "draft": ("Draft", "草稿"),
        "signed": ("Signed", "已签订"),
        "active": ("Active", "执行中"),
        "expired": ("Expired", "已到期"),
        "terminated": ("Terminated", "已终止"),
    },
    "quotes.status": {
        "draft": ("Draft", "草稿"),
        "sent": ("Sent", "已发送"),
        "accepted": ("Accepted", "已接受"),
        "rejected": ("Rejected", "已拒绝"),
        "fulfilled": ("Fulfilled", "已完成"),
        "cancelled": ("Cancelled", "已取消"),
    },
    "campaigns.channel": {
        "event": ("Event", "线下活动"),
        "email": ("E-mail", "邮件"),
        "social": ("Social media", "社交媒体"),
        "advertisement": ("Advertisement", "广告"),
        "telemarketing": ("Telemarketing", "电话营销"),
        "other": ("Other", "其他"),
    },
    "campaigns.status": {
        "planned": ("Planned", "计划中"),
        "active": ("Active", "进行中"),
        "finished": ("Finished", "已结束"),
        "cancelled": ("Cancelled", "已取消"),
    },
    "campaign_members.status": {
        "invited": ("Invited", "已邀请"),
        "responded": ("Responded", "已回复"),
        "attended": ("Attended", "已参加"),
        "converted": ("Converted", "已转化"),
    },
    "tickets.status": _TICKET_STATUS,
    "tickets.priority": _PRIORITY,
}

_NOT_SET = ("Not set", "未填写")


def choice_label(collection: str, field: str, code: str | None, lang: Language = "en") -> str:
    """What a person reads for ``code`` of ``collection.field`` in ``lang``."""
    index = 1 if lang == "zh" else 0
    if code is None or code == "":
        return _NOT_SET[index]
    pair = CHOICES.get(f"{collection}.{field}", {}).get(code)
    return pair[index] if pair else code


__all__ = ["CHOICES", "LANGUAGES", "Language", "choice_label"]
