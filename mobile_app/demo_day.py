"""More of the demo book: leads, products, knowledge articles, targets, a won deal.

Written through the same Collection API as :mod:`mobile_app.demo` (which calls
:func:`fill_day`), so screenshots and tests show every module a rep works with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from mobile_app.viewmodels.ports import StorePort

LEADS = (
    ("周杰", "苏州周氏五金", "+86 150 1234 5678", "event", "new"),
    ("吴倩", "宁波海韵家居", "+86 151 2222 3333", "web", "contacted"),
    ("Grace Kim", "Seoul Bright Optics", "+82 2 555 0199", "referral", "qualified"),
    ("郑凯", "厦门凯达物流", "+86 152 4444 5555", "cold_call", "new"),
    ("Oliver Brown", "Brown & Co Retail", "+44 161 496 0000", "web", "disqualified"),
)

PRODUCTS = (
    ("商用笔记本 X14", "NB-X14", "电脑", 6999.0, "台"),
    ("27 寸显示器", "MON-27", "电脑", 1899.0, "台"),
    ("激光打印机 P300", "PRN-300", "办公设备", 2599.0, "台"),
    ("年度维保服务", "SVC-Y1", "服务", 12000.0, "年"),
    ("A4 复印纸（箱）", "PAP-A4", "耗材", 239.0, "箱"),
)

ARTICLES = (
    (
        "退货流程",
        "售后",
        "客户在签收后 7 天内可申请退货。1. 在工单中记录订单号和原因；2. 拍照留存包装；"
        "3. 仓库收到退货后 3 个工作日内退款。",
    ),
    (
        "打印机卡纸处理",
        "技术支持",
        "打开前盖，按箭头方向取出卡住的纸张；检查纸盒是否过满；仍卡纸请更换搓纸轮（备件 PRN-R1）。",
    ),
    (
        "Warranty terms",
        "After-sales",
        "Hardware is covered for 24 months from delivery. Batteries: 12 months. "
        "Accidental damage is not covered unless the customer bought SVC-Y1.",
    ),
    ("发票开具规则", "财务", "增值税专用发票需提供开票信息；订单确认后 5 个工作日内开具。"),
)


@dataclass
class DayIds:
    leads: dict[str, str] = field(default_factory=dict)
    products: dict[str, str] = field(default_factory=dict)
    articles: dict[str, str] = field(default_factory=dict)
    targets: list[str] = field(default_factory=list)


def _insert(store: StorePort, collection: str, fields: dict[str, Any]) -> str:
    return str(store.collection(collection).insert(fields).id)


def fill_day(store: StorePort, today: date, *, user_id: str, reference: bool = True) -> DayIds:
    """Leads for the rep; products, articles and targets (``reference``: written here —
    on a real server a manager writes them and the phone receives them)."""
    ids = DayIds()
    for name, company, phone, source, status in LEADS:
        ids.leads[name] = _insert(
            store,
            "leads",
            {"name": name, "company": company, "phone": phone, "source": source, "status": status},
        )
    if not reference:
        return ids
    for name, sku, category, price, unit in PRODUCTS:
        ids.products[name] = _insert(
            store,
            "products",
            {
                "name": name,
                "sku": sku,
                "category": category,
                "price": price,
                "unit": unit,
                "active": True,
                "tax_rate": 0.13,
            },
        )
    for title, category, body in ARTICLES:
        ids.articles[title] = _insert(
            store, "knowledge_articles", {"title": title, "category": category, "body": body}
        )
    quarter_start = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    quarter_end = date(
        quarter_start.year + (quarter_start.month + 3 > 12), (quarter_start.month + 2) % 12 + 1, 1
    ) - timedelta(days=1)
    ids.targets.append(
        _insert(
            store,
            "sales_targets",
            {
                "owner_id": user_id,
                "period_start": quarter_start.isoformat(),
                "period_end": quarter_end.isoformat(),
                "amount": 500000,
            },
        )
    )
    return ids


def closed_at(day: date) -> str:
    return datetime.combine(day, time(15), tzinfo=UTC).isoformat(timespec="seconds")
