"""Demo data for the app, written through the SDK: a rep's book of Chinese and English
customers with contacts, deals at every stage, visits, tasks, contracts and tickets.

Used by the screenshot command and the tests (a store filled here behaves exactly like
one filled by a sync: it is the same Collection API). Dates are relative to ``today`` so
the Today screen always has overdue, due and upcoming work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from mobile_app.demo_day import DayIds, closed_at, fill_day
from mobile_app.viewmodels.ports import StorePort

STAGES = (
    ("stage-lead", "Lead", "初步接触", 0, 0.1, False, False),
    ("stage-qualified", "Qualified", "需求确认", 1, 0.3, False, False),
    ("stage-proposal", "Proposal", "方案报价", 2, 0.5, False, False),
    ("stage-negotiation", "Negotiation", "商务谈判", 3, 0.8, False, False),
    ("stage-won", "Won", "赢单", 4, 1.0, True, False),
    ("stage-lost", "Lost", "输单", 5, 0.0, False, True),
)

#: name, company, phone, status, tier, city, follow-up offset in days (None: none)
CUSTOMERS: tuple[tuple[str, str, str, str, str, str, int | None], ...] = (
    ("张三", "上海张三贸易有限公司", "+86 138 0013 8000", "intent", "high", "上海", -2),
    ("李四", "北京李四科技", "+86 139 1111 2222", "potential", "mid", "北京", 0),
    ("王芳", "杭州西湖茶业", "+86 137 3333 4444", "closed", "high", "杭州", 5),
    ("Alice Johnson", "Acme Trading Co.", "+1 415 555 0100", "intent", "high", "San Francisco", 0),
    ("赵敏", "深圳敏捷电子", "+86 135 5555 6666", "potential", "low", "深圳", 12),
    ("Bob Smith", "Northwind Foods", "+44 20 7946 0018", "potential", "mid", "London", -6),
    ("陈晨", "成都晨光机械", "+86 136 7777 8888", "intent", "mid", "成都", 3),
    ("刘洋", "广州洋帆物流", "+86 133 9999 0000", "closed", "mid", "广州", None),
    ("Emma Wilson", "Wilson & Daughters", "+61 2 9374 4000", "potential", "low", "Sydney", 20),
    ("欧阳娜娜", "南京欧阳文化传媒", "+86 131 2345 6789", "intent", "high", "南京", 1),
    ("黄磊", "武汉黄鹤建材", "+86 132 8765 4321", "potential", "low", "武汉", None),
    ("David Lee 李大卫", "Pacific Rim Imports", "+852 2123 4567", "intent", "mid", "香港", 7),
)


@dataclass
class DemoIds:
    customers: dict[str, str] = field(default_factory=dict)
    stages: dict[str, str] = field(default_factory=dict)
    opportunities: dict[str, str] = field(default_factory=dict)
    tickets: dict[str, str] = field(default_factory=dict)
    contracts: dict[str, str] = field(default_factory=dict)
    tasks: dict[str, str] = field(default_factory=dict)
    day: DayIds = field(default_factory=DayIds)


def _at(day: date, hour: int = 10) -> str:
    return datetime.combine(day, time(hour), tzinfo=UTC).isoformat(timespec="seconds")


def _insert(
    store: StorePort, collection: str, fields: dict[str, Any], record_id: str | None = None
) -> str:
    coll: Any = store.collection(collection)
    record = coll.insert(fields, id=record_id) if record_id else coll.insert(fields)
    return str(record.id)


def fill_demo(
    store: StorePort, today: date, *, user_id: str = "rep1", stages: bool = True
) -> DemoIds:
    """Write the demo book into ``store``; the ids of what was written, by name."""
    ids = DemoIds()
    if stages:
        for sid, name, zh, pos, prob, won, lost in STAGES:
            ids.stages[name] = _insert(
                store,
                "pipeline_stages",
                {
                    "name": name,
                    "name_zh": zh,
                    "position": pos,
                    "probability": prob,
                    "is_won": won,
                    "is_lost": lost,
                },
                sid,
            )
    else:
        ids.stages = {name: sid for sid, name, *_ in STAGES}
    for name, company, phone, status, tier, city, offset in CUSTOMERS:
        fields: dict[str, Any] = {
            "name": name,
            "company": company,
            "phone": phone,
            "status": status,
            "tier": tier,
            "city": city,
            "kind": "person",
            "source": "referral" if status == "closed" else "event",
        }
        if offset is not None:
            fields["next_follow_up"] = (today + timedelta(days=offset)).isoformat()
        ids.customers[name] = _insert(store, "customers", fields)
    c = ids.customers
    for customer, contact, title, phone in (
        ("张三", "张伟", "采购经理", "+86 138 0013 8001"),
        ("张三", "孙丽", "财务总监", "+86 138 0013 8002"),
        ("Alice Johnson", "Tom Baker", "Buyer", "+1 415 555 0101"),
        ("王芳", "王芳", "总经理", "+86 137 3333 4444"),
    ):
        _insert(
            store,
            "contacts",
            {"customer_id": c[customer], "name": contact, "title": title, "phone": phone},
        )
    deals = (
        ("张三", "年度办公设备采购", "Negotiation", 580000, 30),
        ("张三", "仓储系统升级", "Qualified", 120000, 60),
        ("李四", "研发服务器扩容", "Proposal", 260000, 21),
        ("Alice Johnson", "Fleet tablets 2027", "Proposal", 95000, 45),
        ("陈晨", "数控机床维保", "Lead", 48000, 90),
        ("欧阳娜娜", "品牌发布会", "Qualified", 150000, 14),
        ("王芳", "春茶礼盒定制", "Won", 88000, -10),
        ("Bob Smith", "Cold-chain pilot", "Lost", 30000, -20),
        ("David Lee 李大卫", "Import licence advisory", "Lead", 22000, 75),
    )
    for customer, name, stage, amount, close_in in deals:
        stage_row = next(s for s in STAGES if s[1] == stage)
        ids.opportunities[name] = _insert(
            store,
            "opportunities",
            {
                "customer_id": c[customer],
                "name": name,
                "stage_id": ids.stages[stage],
                "amount": amount,
                "currency": "CNY",
                "probability": stage_row[4],
                "expected_close_date": (today + timedelta(days=close_in)).isoformat(),
                "status": "won" if stage_row[5] else "lost" if stage_row[6] else "open",
                **(
                    {"closed_at": closed_at(today + timedelta(days=close_in))}
                    if stage_row[5] or stage_row[6]
                    else {}
                ),
                **({"lost_reason": "价格高于竞品"} if stage_row[6] else {}),
            },
        )
    for customer, kind, days_ago, outcome, notes in (
        ("张三", "visit", 3, "positive", "客户对报价满意，下周确认合同条款。"),
        ("张三", "call", 10, "follow_up", "约好上门演示。"),
        ("李四", "meeting", 5, "neutral", "需要技术团队再评估。"),
        ("Alice Johnson", "email", 2, "positive", "Sent the revised quote."),
        ("王芳", "visit", 15, "positive", "签约完成，安排交付。"),
    ):
        _insert(
            store,
            "activities",
            {
                "customer_id": c[customer],
                "type": kind,
                "occurred_at": _at(today - timedelta(days=days_ago)),
                "outcome": outcome,
                "notes": notes,
                "author_id": user_id,
            },
        )
    ids.day = fill_day(store, today, user_id=user_id, reference=stages)
    for customer, title, due_in in (
        ("张三", "发送合同草稿给张伟", -1),
        ("李四", "准备服务器配置方案", 0),
        ("Alice Johnson", "Call Tom about delivery dates", 2),
    ):
        ids.tasks[title] = _insert(
            store,
            "tasks",
            {
                "customer_id": c[customer],
                "title": title,
                "due_at": _at(today + timedelta(days=due_in), 9),
                "remind_at": _at(today + timedelta(days=due_in), 8),
                "status": "open",
                "priority": "high" if due_in < 0 else "normal",
                "assignee_id": user_id,
            },
        )
    for customer, number, title, amount, ends_in, remind in (
        ("王芳", "HT-2026-0815", "茶叶年度供货合同", 88000, 12, 30),
        ("刘洋", "HT-2025-1102", "物流服务框架协议", 360000, 25, 14),
        ("张三", "HT-2024-0301", "设备租赁合同", 45000, 200, 60),
    ):
        ids.contracts[number] = _insert(
            store,
            "contracts",
            {
                "customer_id": c[customer],
                "number": number,
                "title": title,
                "amount": amount,
                "currency": "CNY",
                "status": "active",
                "starts_on": (today - timedelta(days=365 - ends_in)).isoformat(),
                "ends_on": (today + timedelta(days=ends_in)).isoformat(),
                "remind_days_before": remind,
            },
        )
    for customer, title, status, priority in (
        ("王芳", "礼盒包装破损", "open", "high"),
        ("Alice Johnson", "Invoice address wrong", "in_progress", "normal"),
        ("刘洋", "系统登录失败", "resolved", "urgent"),
    ):
        ids.tickets[title] = _insert(
            store,
            "tickets",
            {
                "customer_id": c[customer],
                "title": title,
                "description": title,
                "status": status,
                "priority": priority,
                "opened_at": _at(today - timedelta(days=4)),
            },
        )
    _insert(
        store,
        "ticket_comments",
        {
            "customer_id": c["王芳"],
            "ticket_id": ids.tickets["礼盒包装破损"],
            "body": "已联系仓库补发 20 盒。",
            "created_at": _at(today - timedelta(days=1)),
        },
    )
    return ids


# -- a synced demo: the SDK's in-process fake server ----------------------------------
#: The demo server is one schema rule stricter than the app (customer names of at most
#: 30 characters), so the demo holds a write the server refused — as happens when the
#: server's rules move ahead of an installed app.
DEMO_NAME_LIMIT = 30
REJECTED_NAME = "Pacific Rim Imports & Exports Holdings (HK) Ltd"


def demo_server_schema() -> Any:
    from dataclasses import replace

    from sync_protocol import CRM_SCHEMA

    customers = CRM_SCHEMA["customers"]
    fields = dict(customers.fields)
    fields["name"] = replace(fields["name"], max_length=DEMO_NAME_LIMIT)
    entities = {**CRM_SCHEMA.entities, "customers": replace(customers, fields=fields)}
    return replace(CRM_SCHEMA, entities=entities)


@dataclass
class DemoWorld:
    """A store synced with a fake server, holding conflicts, a rejected write and pending work."""

    session: Any
    ids: DemoIds
    server: Any
    conflict_contract: str = ""
    rejected_customer: str = ""
    pending_visit: str = ""


def build_demo(
    data_dir: Any,
    today: date,
    *,
    language: str = "zh",
    passphrase: str = "demo-passphrase",
    conflicts: bool = True,
    rejected: bool = True,
    pending: bool = True,
) -> DemoWorld:
    """Open a fresh store in ``data_dir``, sync it with a fake server full of demo data,
    then make the states the app must show: a conflict on a contract's signed amount and
    end date (``manual`` fields), a rejected write, and a visit not yet sent."""
    from pathlib import Path

    from client_sdk import FAST_KDF, Store, SyncClient, SyncConfig
    from client_sdk.testing import FakeServer
    from mobile_app.i18n import Translator
    from mobile_app.pinyin_search import search_keys
    from mobile_app.viewmodels.base import Session
    from mobile_app.viewmodels.visit import LogVisitViewModel
    from sync_protocol import CRM_SCHEMA

    server = FakeServer(
        users={"rep1": "fieldsync-demo", "manager": "fieldsync-demo"}, schema=demo_server_schema()
    )
    path = Path(data_dir)
    path.mkdir(parents=True, exist_ok=True)
    store = Store.open(
        path / "fieldsync.db", passphrase, schema=CRM_SCHEMA, search_keys=search_keys, kdf=FAST_KDF
    )
    client = SyncClient(store, server.transport(), SyncConfig(sleep=lambda _s: None))
    info = client.login("rep1", "fieldsync-demo", device_name="Demo phone")
    from mobile_app.viewmodels.account import user_from_login

    user = user_from_login(info, "rep1")
    ids = fill_demo(store, today, user_id=user.id)
    client.sync()
    tr = Translator("zh" if language == "zh" else "en")
    session = Session(store=store, user=user, tr=tr, client=client, server_url="demo://fake")
    world = DemoWorld(session=session, ids=ids, server=server)
    if conflicts:
        # the manager corrects the signed amount and end date from another device ...
        contract = ids.contracts["HT-2026-0815"]
        other = Store.open(None, "other-device", schema=CRM_SCHEMA, kdf=FAST_KDF)
        other_client = SyncClient(other, server.transport(), SyncConfig(sleep=lambda _s: None))
        other_client.login("manager", "fieldsync-demo", device_name="Office PC")
        other_client.sync()
        other.collection("contracts").update(
            contract, {"amount": 90000, "ends_on": (today + timedelta(days=30)).isoformat()}
        )
        other_client.sync()
        other.close()
        # ... while the rep, offline, typed the figures the customer told them
        store.collection("contracts").update(
            contract, {"amount": 92000, "ends_on": (today + timedelta(days=40)).isoformat()}
        )
        client.sync()
        world.conflict_contract = contract
    if rejected:
        record = store.collection("customers").insert(
            {"name": REJECTED_NAME, "status": "potential", "company": "Pacific Rim", "city": "香港"}
        )
        client.sync()
        world.rejected_customer = str(record.id)
    if pending:
        visit = LogVisitViewModel(session, ids.customers["欧阳娜娜"])
        visit.notes = "带样品拜访，客户希望下周看方案。"
        visit.next_follow_up = (today + timedelta(days=6)).isoformat()
        visit.save()
        world.pending_visit = str(visit.activity_id or "")
    return world


def demo_photos(session: Any, activity_id: str, folder: Any) -> list[str]:
    """Photos on a visit in each upload state the app shows (queued, uploading, uploaded,
    failed) — for the screenshot of the visit screen. The states are set the way the
    uploader sets them; no server is involved."""
    from pathlib import Path

    from client_sdk.attachments import AttachmentState
    from mobile_app.viewmodels.photos import attachments_of

    attachments: Any = attachments_of(session)
    if attachments is None:
        return []
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ids: list[str] = []
    for index, (name, size) in enumerate(
        (
            ("IMG_0041.jpg", 2_400_000),
            ("IMG_0042.jpg", 3_100_000),
            ("货架陈列.jpg", 1_800_000),
            ("全景.jpg", 900_000),
        )
    ):
        path = folder / name
        path.write_bytes(b"\xff\xd8\xff\xe0" + bytes([index]) * (size - 4))
        info = attachments.add(
            "activities",
            activity_id,
            str(path),
            kind="photo",
            mime="image/jpeg",
            captured_at=session.now_iso(),
            name=name,
        )
        ids.append(info.id)
    attachments.update(ids[0], state=AttachmentState.COMPLETE, uploaded_bytes=2_400_000)
    attachments.update(ids[1], state=AttachmentState.UPLOADING, uploaded_bytes=1_310_720)
    attachments.update(
        ids[3],
        state=AttachmentState.FAILED,
        error={"code": "payload_too_large", "message": "", "details": {"max_bytes": 524_288}},
    )
    return ids


def demo_refused_conversion(world: DemoWorld) -> str:
    """A lead converted offline that the server refuses as a possible duplicate of 张三
    (same phone), with the rest of its group — for the screenshot of the rejected-writes
    screen. The SDK's fake server has no duplicate rule, so this one push is answered the
    way the real server answers it (``possible_duplicate`` with ``details.matches``, the
    group's other writes ``group_rejected``); everything else goes to the fake server.
    Returns the refused customer's id."""
    from client_sdk import MockTransport, SyncClient, SyncConfig, TransportResponse
    from mobile_app.viewmodels.leads import LeadConvertViewModel

    session = world.session
    zhang = world.ids.customers["张三"]
    lead_id = "lead-trade-fair-zhang"  # from the office's trade-fair import
    world.server.put(
        "leads",
        lead_id,
        {"name": "张三", "company": "张三商行", "phone": "13800138000", "status": "new"},
    )
    session.client.sync()
    convert = LeadConvertViewModel(session, lead_id)
    convert.deal_name, convert.amount = "张三商行 收银系统", "18000"
    convert.convert()
    refused = convert.result["customer"]

    def answer(request: Any) -> Any:
        if request.path != "/v1/sync/push":
            return world.server.handle(request)
        mutations = request.body["mutations"]
        culprit = next(m["id"] for m in mutations if m["record_id"] == refused)
        results = []
        for m in mutations:
            if m["id"] == culprit:
                error = {
                    "code": "possible_duplicate",
                    "message": "customers: looks like an existing record (same phone)",
                    "details": {
                        "matches": [
                            {
                                "collection": "customers",
                                "record_id": zhang,
                                "matched_on": "phone",
                                "name": "张三",
                                "owner_id": session.user.id,
                            }
                        ]
                    },
                }
            else:
                error = {
                    "code": "group_rejected",
                    "message": "another write of the group was rejected",
                    "details": {"group": m.get("group"), "failed_mutation_id": culprit},
                }
            results.append({"mutation_id": m["id"], "status": "rejected", "error": error})
        body = {"results": results, "server_hlc": world.server.hlc.now().encode()}
        return TransportResponse.of(200, body)

    client = SyncClient(session.store, MockTransport(answer), SyncConfig(sleep=lambda _s: None))
    client.login("rep1", "fieldsync-demo", device_name="Demo phone")
    client.sync()
    return refused
