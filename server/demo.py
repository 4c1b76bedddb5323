"""Demo data: one sales team and ~200 customers, mixing Chinese and English.

Accounts (password ``fieldsync-demo``, accepted only in development/test): ``manager``
(leads the team 华东销售部), reps ``rep1`` and ``rep2``, and ``admin``.

Records are written through the sync engine itself (:func:`server.repository.apply_push`
as the owning user), so demo data is valid by the same rules as a device's writes.
A seeded random generator makes the content the same on every run (dates are relative
to today so reminders and expiring contracts stay current).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sync_protocol import CRM_SCHEMA, HybridLogicalClock, Mutation

from .accounts import Principal, create_team, create_user, principal_for
from .auth import hash_password
from .crm import push_rules
from .crm.keys import duplicate_keys
from .models import Record, User
from .repository import apply_push
from .settings import DEMO_PASSWORD

SEED = 20_240_601
TEAM_ID = "team-east"
TEAM_NAME = "华东销售部 East China Sales"

STAGES = [
    ("stage-lead", "Lead", "初步接触", 0.1, False, False),
    ("stage-qualified", "Qualified", "需求确认", 0.25, False, False),
    ("stage-proposal", "Proposal", "方案报价", 0.5, False, False),
    ("stage-negotiation", "Negotiation", "商务谈判", 0.75, False, False),
    ("stage-won", "Won", "赢单", 1.0, True, False),
    ("stage-lost", "Lost", "输单", 0.0, False, True),
]

PRODUCTS = [
    ("prod-crm-std", "云CRM 标准版", "CRM-STD", "软件", 9800, "套/年"),
    ("prod-crm-pro", "云CRM 专业版", "CRM-PRO", "软件", 19800, "套/年"),
    ("prod-scanner", "手持扫码终端 PDA-7", "HW-PDA7", "硬件", 2600, "台"),
    ("prod-printer", "Thermal label printer", "HW-LP200", "Hardware", 1450, "unit"),
    ("prod-training", "实施培训服务", "SVC-TRAIN", "服务", 5000, "天"),
    ("prod-support", "Premium support", "SVC-SUP", "Service", 12000, "year"),
]

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
GIVEN = [
    "伟",
    "芳",
    "娜",
    "敏",
    "静",
    "磊",
    "强",
    "洋",
    "艳",
    "勇",
    "军",
    "杰",
    "娟",
    "涛",
    "明",
    "超",
    "秀英",
    "建华",
    "志强",
    "丽",
]
ENGLISH_FIRST = [
    "Alice",
    "Brian",
    "Chloe",
    "David",
    "Emma",
    "Frank",
    "Grace",
    "Henry",
    "Isabel",
    "Jack",
    "Karen",
    "Liam",
    "Mia",
    "Noah",
    "Olivia",
]
ENGLISH_LAST = [
    "Smith",
    "Johnson",
    "Brown",
    "Taylor",
    "Wilson",
    "Evans",
    "Walker",
    "Wright",
    "Green",
    "Hall",
]
CN_COMPANIES = [
    "华为技术有限公司",
    "上海浦东物流有限公司",
    "杭州西湖茶业",
    "苏州工业园区精密制造",
    "南京金陵医药",
    "宁波港口贸易",
    "合肥科大讯联",
    "无锡太湖电子",
    "绍兴黄酒集团",
    "温州鞋业联合会",
]
EN_COMPANIES = [
    "Acme Logistics Ltd",
    "Blue River Foods",
    "Northwind Traders",
    "Summit Medical",
    "Harbor Retail Group",
    "Pioneer Tools Inc",
]
CITIES = [
    ("上海", 31.23, 121.47),
    ("杭州", 30.27, 120.15),
    ("苏州", 31.30, 120.58),
    ("南京", 32.06, 118.80),
    ("宁波", 29.87, 121.54),
    ("合肥", 31.82, 117.23),
]
STREETS = ["南京东路", "延安中路", "文三路", "人民路", "中山北路", "解放路", "长江路"]
INDUSTRIES = ["制造业", "零售", "医药", "物流", "餐饮", "Education", "Finance", "IT"]
TAGS = ["重点客户", "老客户", "VIP", "价格敏感", "决策人", "需回访", "展会", "partner"]


@dataclass(slots=True)
class _Writer:
    """Collects mutations per author and applies them through the sync engine."""

    clock: HybridLogicalClock
    batches: dict[str, list[Mutation]] = field(default_factory=dict)
    counter: int = 0

    def add(self, user_id: str, collection: str, record_id: str, fields: dict[str, Any]) -> None:
        self.counter += 1
        self.batches.setdefault(user_id, []).append(
            Mutation(
                id=f"demo-m-{self.counter:06d}",
                collection=collection,
                record_id=record_id,
                op="upsert",
                fields={k: v for k, v in fields.items() if v is not None},
                hlc=self.clock.now().encode(),
            )
        )


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _customers(rng: random.Random, count: int) -> Iterator[dict[str, Any]]:
    """Distinct people: no two share name + company or a mobile number (the server would
    flag them as possible duplicates)."""
    seen: set[str] = set()
    for i in range(count):
        fields = _customer(rng, i)
        fields["mobile"] = f"+86 1{30 + i % 60} {i // 60:04d} {rng.randint(1000, 9999)}"
        fields["email"] = f"contact{i}@example.com"
        for _attempt in range(20):
            if not duplicate_keys(fields) & seen:
                break
            # another random person (the first three are fixed), same number and address
            fields = {**_customer(rng, i + 3), "mobile": fields["mobile"], "email": fields["email"]}
        else:
            fields.pop("company")  # the pool is exhausted: a private customer
        seen |= duplicate_keys(fields)
        yield fields


def _customer(rng: random.Random, i: int) -> dict[str, Any]:
    city, lat, lon = rng.choice(CITIES)
    chinese = i % 3 != 2
    if i == 0:
        name, gender = "张三", "male"
    elif i == 1:
        name, gender = "李娜", "female"
    elif i == 2:
        name, gender = "王伟", "male"
    elif chinese:
        name = rng.choice(SURNAMES) + rng.choice(GIVEN)
        gender = rng.choice(["male", "female"])
    else:
        name = f"{rng.choice(ENGLISH_FIRST)} {rng.choice(ENGLISH_LAST)}"
        gender = rng.choice(["male", "female"])
    company = rng.choice(CN_COMPANIES if chinese else EN_COMPANIES)
    return {
        "name": name,
        "kind": "person" if i % 4 else "company",
        "gender": gender,
        "company": company,
        "industry": rng.choice(INDUSTRIES),
        "mobile": f"+86 1{rng.randint(30, 89)} {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}",
        "email": f"contact{i}@example.com",
        "address": f"{city}市{rng.choice(STREETS)}{rng.randint(1, 999)}号",
        "city": city,
        "source": rng.choice(["referral", "web", "event", "cold_call", "partner"]),
        "status": rng.choice(["potential", "potential", "intent", "closed"]),
        "tier": rng.choice(["high", "mid", "low"]),
        "tags": rng.sample(TAGS, rng.randint(0, 3)),
        "location": {
            "lat": round(lat + rng.uniform(-0.1, 0.1), 5),
            "lon": round(lon + rng.uniform(-0.1, 0.1), 5),
        },
    }


def seed_demo(
    session: Session, *, customers: int = 200, password: str = DEMO_PASSWORD
) -> dict[str, int]:
    """Create the demo team, users and CRM data. Returns counts per collection."""
    rng = random.Random(SEED)
    today = date.today()
    now = datetime.now(UTC)
    create_team(session, TEAM_NAME, team_id=TEAM_ID)
    pw_hash = hash_password(password)
    users = {
        "manager": create_user(
            session,
            username="manager",
            password=password,
            password_hash=pw_hash,
            role="manager",
            team_id=TEAM_ID,
            display_name="陈经理 (Manager Chen)",
            user_id="u-manager",
        ),
        "rep1": create_user(
            session,
            username="rep1",
            password=password,
            password_hash=pw_hash,
            role="rep",
            team_id=TEAM_ID,
            display_name="李明 (Rep Li)",
            user_id="u-rep1",
        ),
        "rep2": create_user(
            session,
            username="rep2",
            password=password,
            password_hash=pw_hash,
            role="rep",
            team_id=TEAM_ID,
            display_name="Sarah Wang 王莎",
            user_id="u-rep2",
        ),
        "admin": create_user(
            session,
            username="admin",
            password=password,
            password_hash=pw_hash,
            role="admin",
            display_name="系统管理员 Admin",
            user_id="u-admin",
        ),
    }
    session.flush()
    w = _Writer(HybridLogicalClock("demo-seed"))
    mgr = users["manager"].id
    for sid, name, zh, prob, won, lost in STAGES:
        w.add(
            mgr,
            "pipeline_stages",
            sid,
            {
                "name": name,
                "name_zh": zh,
                "position": STAGES.index((sid, name, zh, prob, won, lost)),
                "probability": prob,
                "is_won": won,
                "is_lost": lost,
            },
        )
    for pid, name, sku, cat, price, unit in PRODUCTS:
        w.add(
            mgr,
            "products",
            pid,
            {
                "name": name,
                "sku": sku,
                "category": cat,
                "price": price,
                "unit": unit,
                "active": True,
            },
        )
    w.add(
        mgr,
        "knowledge_articles",
        "kb-0001",
        {
            "title": "如何处理客户的价格异议",
            "body": "1. 先认同客户的顾虑；2. 强调价值而不是价格；3. 提供分期或套餐方案。",
            "category": "销售技巧",
            "tags": ["价格", "异议处理"],
        },
    )
    w.add(
        mgr,
        "knowledge_articles",
        "kb-0002",
        {
            "title": "Resetting a PDA-7 scanner",
            "body": "Hold power + scan for 10 seconds, then re-pair over Bluetooth.",
            "category": "Support",
            "tags": ["hardware"],
        },
    )
    for rep in ("rep1", "rep2"):
        w.add(
            mgr,
            "sales_targets",
            f"target-{rep}-q",
            {
                "owner_id": users[rep].id,
                "period_start": today.replace(day=1).isoformat(),
                "period_end": (today.replace(day=1) + timedelta(days=90)).isoformat(),
                "amount": 500_000,
            },
        )

    made: list[tuple[str, str, dict[str, Any], str | None]] = []  # cid, owner, fields, deal
    for i, fields in enumerate(_customers(rng, customers)):
        owner = users["rep1" if i % 2 == 0 else "rep2"].id
        cid = f"demo-cust-{i:04d}"
        made.append((cid, owner, fields, None))
        fields["next_follow_up"] = (today + timedelta(days=rng.randint(-5, 20))).isoformat()
        fields["last_contacted_at"] = _iso(now - timedelta(days=rng.randint(1, 60)))
        w.add(owner, "customers", cid, fields)
        for c in range(rng.randint(1, 2)):
            chinese = "\u4e00" <= fields["name"][0] <= "\u9fff"
            cname = (
                (rng.choice(SURNAMES) + rng.choice(GIVEN))
                if chinese
                else f"{rng.choice(ENGLISH_FIRST)} {rng.choice(ENGLISH_LAST)}"
            )
            w.add(
                owner,
                "contacts",
                f"demo-cont-{i:04d}-{c}",
                {
                    "customer_id": cid,
                    "name": cname,
                    "title": rng.choice(["采购经理", "总经理", "IT主管", "Buyer", "CTO"]),
                    "phone": f"+86 21 {rng.randint(5000, 6999)} {rng.randint(1000, 9999)}",
                    "is_primary": c == 0,
                },
            )
        if rng.random() < 0.7:
            stage = rng.choice(STAGES)
            status = "won" if stage[4] else "lost" if stage[5] else "open"
            product = rng.choice(PRODUCTS)
            w.add(
                owner,
                "opportunities",
                f"demo-opp-{i:04d}",
                {
                    "customer_id": cid,
                    "name": f"{fields['company']} - {product[1]}",
                    "stage_id": stage[0],
                    "amount": float(product[4] * rng.randint(1, 20)),
                    "currency": "CNY",
                    "probability": stage[3],
                    "expected_close_date": (
                        today + timedelta(days=rng.randint(5, 120))
                    ).isoformat(),
                    "status": status,
                    "product_id": product[0],
                    # closed deals carry their close date (the performance reports read it)
                    "closed_at": _iso(now - timedelta(days=(i * 7) % 80 + 1))
                    if status != "open"
                    else None,
                },
            )
            made[-1] = (cid, owner, fields, f"demo-opp-{i:04d}|{stage[0]}|{status}")
        for a in range(rng.randint(1, 3)):
            visit = rng.random() < 0.5
            when = now - timedelta(days=rng.randint(0, 45), hours=rng.randint(0, 8))
            loc = fields["location"]
            w.add(
                owner,
                "activities",
                f"demo-act-{i:04d}-{a}",
                {
                    "customer_id": cid,
                    "type": "visit" if visit else "call",
                    "occurred_at": _iso(when),
                    "subject": rng.choice(
                        ["上门拜访", "电话回访", "产品演示", "Follow-up call", "需求沟通"]
                    ),
                    "notes": rng.choice(
                        [
                            "客户对专业版很感兴趣，需要报价。",
                            "约好下周再联系。",
                            "Asked for a discount on 20 units.",
                            "决策人出差，改期。",
                        ]
                    ),
                    "outcome": rng.choice(["positive", "neutral", "follow_up", "no_answer"]),
                    "check_in": {"lat": loc["lat"], "lon": loc["lon"], "accuracy_m": 15.0}
                    if visit
                    else None,
                    "author_id": owner,
                },
            )
        if rng.random() < 0.3:
            w.add(
                owner,
                "tasks",
                f"demo-task-{i:04d}",
                {
                    "customer_id": cid,
                    "title": rng.choice(
                        ["发送报价单", "Send contract draft", "安排产品演示", "回访满意度"]
                    ),
                    "due_at": _iso(now + timedelta(days=rng.randint(-2, 10))),
                    "status": rng.choice(["open", "open", "done"]),
                    "priority": rng.choice(["low", "normal", "high"]),
                },
            )
        if rng.random() < 0.2:
            ends = today + timedelta(days=rng.choice([7, 15, 25, 90, 200]))
            w.add(
                owner,
                "contracts",
                f"demo-contract-{i:04d}",
                {
                    "customer_id": cid,
                    "number": f"HT-{today.year}-{i:04d}",
                    "title": f"{fields['company']} 年度服务合同",
                    "amount": float(rng.randint(10, 300) * 1000),
                    "currency": "CNY",
                    "status": "active",
                    "signed_on": (ends - timedelta(days=365)).isoformat(),
                    "starts_on": (ends - timedelta(days=365)).isoformat(),
                    "ends_on": ends.isoformat(),
                    "remind_days_before": 30,
                },
            )
        if rng.random() < 0.1:
            w.add(
                owner,
                "tickets",
                f"demo-ticket-{i:04d}",
                {
                    "customer_id": cid,
                    "title": rng.choice(["扫码枪无法连接", "Invoice correction", "系统登录缓慢"]),
                    "description": "客户反馈问题，需要跟进。",
                    "status": rng.choice(["open", "in_progress", "resolved"]),
                    "priority": rng.choice(["normal", "high"]),
                    "opened_at": _iso(now - timedelta(days=rng.randint(1, 20))),
                    "assignee_id": owner,
                },
            )

    counts: dict[str, int] = {}
    _apply(session, w, now, counts)
    if made:
        extra = _Writer(w.clock, counter=w.counter)
        _report_data(extra, random.Random(SEED + 1), made, mgr, today, now)
        _apply(session, extra, now, counts)
    session.commit()
    return counts


def _apply(session: Session, w: _Writer, now: datetime, counts: dict[str, int]) -> None:
    conn = session.connection()
    for username_id, mutations in w.batches.items():
        user = session.get(User, username_id)
        assert user is not None
        principal: Principal = principal_for(session, user, "demo-seed")
        for start in range(0, len(mutations), 1000):
            chunk = mutations[start : start + 1000]
            outcome = apply_push(
                conn,
                principal,
                CRM_SCHEMA,
                chunk,
                now_ms=int(now.timestamp() * 1000),
                server_hlc=lambda: w.clock.now().encode(),
                rules=push_rules(CRM_SCHEMA),
            )
            bad = [r for r in outcome.results if r.error is not None]
            if bad:
                raise RuntimeError(f"demo data rejected: {bad[0].error}")
        for m in mutations:
            counts[m.collection] = counts.get(m.collection, 0) + 1


CAMPAIGNS = [
    ("demo-camp-expo", "2026 华东智能零售展", "event", "finished", 60_000, 52_000),
    ("demo-camp-mail", "Spring e-mail offer", "email", "active", 8_000, 5_500),
    ("demo-camp-wechat", "微信公众号推广", "social", "active", 20_000, 23_000),
]
SURVEY_QUESTIONS = {
    "items": [
        {"key": "speed", "label": "Response speed", "label_zh": "响应速度", "type": "score",
         "required": True},
        {"key": "solved", "label": "Was it solved?", "label_zh": "问题是否解决", "type": "choice",
         "options": ["yes", "partly", "no"], "required": True},
        {"key": "comment", "label": "Comments", "label_zh": "意见建议", "type": "text"},
    ]
}  # fmt: skip


def _report_data(
    w: _Writer,
    rng: random.Random,
    made: list[tuple[str, str, dict[str, Any], str | None]],
    mgr: str,
    today: date,
    now: datetime,
) -> None:
    """What makes every report and screen show something: campaigns with members,
    leads (some converted), stage history, orders priced from the catalogue, product
    targets, resolved tickets with satisfaction and a survey. A second pass over the
    customers made above, with its own random stream (the first pass is unchanged)."""
    for kid, name, channel, status, budget, cost in CAMPAIGNS:
        w.add(mgr, "campaigns", kid, {"name": name, "channel": channel, "status": status,
              "budget": budget, "cost": cost,
              "starts_on": (today - timedelta(days=60)).isoformat(),
              "ends_on": (today + timedelta(days=30)).isoformat()})  # fmt: skip
    w.add(mgr, "surveys", "demo-survey-service",
          {"name": "售后服务回访 After-service survey", "questions": SURVEY_QUESTIONS,
           "active": True})  # fmt: skip
    reps = sorted({owner for _, owner, _, _ in made})
    for rep in reps:
        for pid, *_ in PRODUCTS[:3]:
            w.add(mgr, "sales_targets", f"target-{rep}-{pid}",
                  {"owner_id": rep, "product_id": pid, "amount": 100_000,
                   "period_start": today.replace(day=1).isoformat(),
                   "period_end": (today.replace(day=1) + timedelta(days=90)).isoformat()})  # fmt: skip
    stage_ids = [s[0] for s in STAGES]
    for n, (cid, owner, fields, deal) in enumerate(made):
        if n % 3 == 0:
            status = rng.choice(["invited", "responded", "attended", "converted"])
            w.add(mgr, "campaign_members", f"demo-member-{n:04d}",
                  {"campaign_id": CAMPAIGNS[n % 3][0], "customer_id": cid, "status": status,
                   "revenue": float(rng.randint(5, 80) * 1000) if status == "converted" else None,
                   "converted_at": _iso(now - timedelta(days=n % 40 + 1))
                   if status == "converted" else None})  # fmt: skip
        if deal is not None:
            did, stage, status = deal.split("|")
            reached = stage_ids.index(stage) if stage not in ("stage-lost",) else 2
            path = stage_ids[: min(reached, 4) + 1]
            if stage == "stage-won" or stage == "stage-lost":
                path = [*path[:-1], stage] if len(path) > 1 else [stage]
            for k, (a, b) in enumerate(itertools.pairwise(path)):
                w.add(owner, "stage_changes", f"{did}-sc{k}",
                      {"customer_id": cid, "opportunity_id": did, "from_stage_id": a,
                       "to_stage_id": b, "changed_by": owner,
                       "changed_at": _iso(now - timedelta(days=40 - k * 5 - n % 5))})  # fmt: skip
        if n % 5 == 0:  # a lead this customer came from (converted), from a campaign
            w.add(owner, "leads", f"demo-lead-conv-{n:04d}",
                  {"name": f"{fields['name']}（线索）", "company": f"线索来源{n:04d}",
                   "phone": f"+86 177 {n:04d} {rng.randint(1000, 9999)}", "status": "converted",
                   "source": rng.choice(["web", "event", "referral", "campaign"]),
                   "campaign_id": CAMPAIGNS[n % 3][0], "converted_customer_id": cid,
                   "converted_at": _iso(now - timedelta(days=n % 50 + 2))})  # fmt: skip
        if n % 4 == 1:  # an open lead
            w.add(owner, "leads", f"demo-lead-{n:04d}",
                  {"name": rng.choice(SURNAMES) + rng.choice(GIVEN) + "（新线索）",
                   "company": f"潜在客户{n:04d}", "phone": f"+86 178 {n:04d} {rng.randint(1000, 9999)}",
                   "status": rng.choice(["new", "contacted", "qualified", "disqualified"]),
                   "source": rng.choice(["web", "event", "cold_call", "campaign"]),
                   "campaign_id": CAMPAIGNS[n % 3][0] if n % 2 else None})  # fmt: skip
        if n % 6 == 2:  # an order (or a quote) priced from the catalogue; totals by the server
            qid = f"demo-order-{n:04d}"
            kind = "order" if n % 12 == 2 else "quote"
            w.add(owner, "quotes", qid,
                  {"customer_id": cid, "kind": kind, "number": f"SO-{today.year}-{n:04d}",
                   "status": "accepted" if kind == "order" else "sent", "currency": "CNY",
                   "ordered_at": _iso(now - timedelta(days=n % 30 + 1)) if kind == "order" else None})  # fmt: skip
            for k, (pid, _name, _sku, _cat, price, _unit) in enumerate(rng.sample(PRODUCTS, 2)):
                w.add(owner, "quote_lines", f"{qid}-l{k}",
                      {"customer_id": cid, "quote_id": qid, "product_id": pid,
                       "quantity": rng.randint(1, 10), "unit_price": price,
                       "list_price": price})  # fmt: skip
        if n % 8 == 3:  # a resolved ticket with its satisfaction and a survey answer
            tid = f"demo-ticket-done-{n:04d}"
            opened = now - timedelta(days=n % 25 + 2, hours=n % 7)
            score = rng.choice([3, 4, 5, 5, 2])
            w.add(owner, "tickets", tid,
                  {"customer_id": cid, "title": rng.choice(["打印机卡纸", "数据导入失败", "Login issue"]),
                   "status": "resolved", "priority": rng.choice(["normal", "high", "urgent"]),
                   "opened_at": _iso(opened), "resolved_at": _iso(opened + timedelta(hours=n % 30 + 2)),
                   "sla_due_at": _iso(opened + timedelta(hours=24)), "assignee_id": owner,
                   "satisfaction": score, "knowledge_article_ids": ["kb-0002"]})  # fmt: skip
            w.add(owner, "satisfaction_responses", f"demo-survey-answer-{n:04d}",
                  {"customer_id": cid, "ticket_id": tid, "survey_id": "demo-survey-service",
                   "score": score, "responded_at": _iso(opened + timedelta(days=1, hours=n % 30)),
                   "answers": {"speed": score, "solved": "yes" if score > 3 else "partly"}})  # fmt: skip


def database_is_empty(session: Session) -> bool:
    return not session.scalar(select(func.count()).select_from(User)) and not session.scalar(
        select(func.count()).select_from(Record)
    )
