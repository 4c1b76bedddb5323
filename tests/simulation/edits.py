"""The simulator's CRM edits: what a rep or manager does on a phone, through the SDK.

Every write goes through the public :class:`client_sdk.Collection` API and is recorded
(:class:`Write`) only once the SDK acknowledged it. Values are chosen so the oracle can
tell writes apart: cities, tags, note lines, numbers and names are unique per run;
tags are only ever added and notes only ever appended to.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.support.simulator import Device

STAGES = (
    "stage-lead",
    "stage-qualified",
    "stage-proposal",
    "stage-negotiation",
    "stage-won",
    "stage-lost",
)


@dataclass
class Write:
    """One write the SDK acknowledged (insert/update/delete returned)."""

    device: int
    user_id: str
    collection: str
    record_id: str
    op: str
    fields: dict[str, Any]
    hlc: str
    step: int


class CrmEdits:
    """Mixed into :class:`tests.support.simulator.Simulation`."""

    rng: random.Random
    stats: Counter[str]
    writes: list[Write]
    step: int

    def uniq(self, prefix: str) -> str:
        raise NotImplementedError

    def edit(self, device: Device) -> None:
        store = device.store
        customers = store.collection("customers").all()
        r = self.rng.random()
        if not customers or r < 0.12:
            self.create_customer(device)
            return
        customer = self.rng.choice(customers)
        cid = customer.id
        if r < 0.30:
            field_name = self.rng.choice(("phone", "city", "status", "tier", "next_follow_up"))
            self.update(device, "customers", cid, {field_name: self.value_for(field_name)})
        elif r < 0.40:
            tags = list(customer.get("tags") or [])
            self.update(device, "customers", cid, {"tags": [*tags, self.uniq("tag")]})
        elif r < 0.50:
            notes = customer.get("notes") or ""
            line = self.uniq("note")
            self.update(device, "customers", cid, {"notes": f"{notes}\n{line}" if notes else line})
        elif r < 0.58:
            self.insert(
                device,
                "activities",
                {
                    "customer_id": cid,
                    "type": self.rng.choice(("call", "visit", "note")),
                    "occurred_at": self.iso_now(device),
                    "subject": self.uniq("act"),
                },
            )
        elif r < 0.74:
            self.opportunity_edit(device, cid)
        elif r < 0.84:
            self.contract_edit(device, cid)
        elif r < 0.95:
            self.task_edit(device, cid)
        elif customer.version is not None and self.rng.random() < 0.5:
            self.delete(device, "customers", cid)
        else:
            self.update(device, "customers", cid, {"city": self.value_for("city")})

    def opportunity_edit(self, device: Device, cid: str) -> None:
        opps = [
            o for o in device.store.collection("opportunities").all() if o.get("customer_id") == cid
        ]
        r = self.rng.random()
        if not opps or r < 0.3:
            self.insert(
                device,
                "opportunities",
                {
                    "customer_id": cid,
                    "name": self.uniq("opp"),
                    "stage_id": STAGES[0],
                    "status": "open",
                    "amount": self.rng.randrange(1000, 900000),
                },
            )
            return
        opp = self.rng.choice(opps)
        if r < 0.75:
            to_stage = self.rng.choice(STAGES)
            if to_stage == opp.get("stage_id"):
                return
            if self.update(device, "opportunities", opp.id, {"stage_id": to_stage}):
                self.insert(
                    device,
                    "stage_changes",
                    {
                        "customer_id": cid,
                        "opportunity_id": opp.id,
                        "from_stage_id": opp.get("stage_id"),
                        "to_stage_id": to_stage,
                        "changed_at": self.iso_now(device),
                        "changed_by": device.user_id,
                    },
                )
        elif r < 0.92:
            self.update(
                device,
                "opportunities",
                opp.id,
                {"amount": self.rng.randrange(1000, 900000), "probability": self.rng.random()},
            )
        else:
            self.delete(device, "opportunities", opp.id)

    def contract_edit(self, device: Device, cid: str) -> None:
        contracts = [
            c for c in device.store.collection("contracts").all() if c.get("customer_id") == cid
        ]
        if not contracts or self.rng.random() < 0.3:
            self.insert(
                device,
                "contracts",
                {
                    "customer_id": cid,
                    "number": self.uniq("HT"),
                    "status": "draft",
                    "amount": self.rng.randrange(1000, 900000),
                },
            )
            return
        contract = self.rng.choice(contracts)
        patch: dict[str, Any] = {"amount": self.rng.randrange(1000, 900000)}
        if self.rng.random() < 0.3:
            patch = {"title": self.uniq("title")}
        self.update(device, "contracts", contract.id, patch)

    def task_edit(self, device: Device, cid: str) -> None:
        tasks = [t for t in device.store.collection("tasks").all() if t.get("customer_id") == cid]
        r = self.rng.random()
        if not tasks or r < 0.35:
            self.insert(
                device,
                "tasks",
                {"customer_id": cid, "title": self.uniq("task"), "status": "open"},
            )
        elif r < 0.85:
            status = self.rng.choice(("open", "done", "cancelled"))
            self.update(device, "tasks", self.rng.choice(tasks).id, {"status": status})
        else:
            self.delete(device, "tasks", self.rng.choice(tasks).id)

    def create_customer(self, device: Device) -> None:
        self.insert(
            device,
            "customers",
            {
                "name": self.uniq("客户 customer"),
                "status": self.rng.choice(("potential", "intent", "closed")),
                "tier": self.rng.choice(("high", "mid", "low")),
                "tags": [self.uniq("tag")],
                "notes": self.uniq("note"),
                "city": self.value_for("city"),
            },
        )

    def value_for(self, name: str) -> Any:
        if name == "phone":
            return f"+86 {self.rng.randrange(10**9, 10**10)}"
        if name == "city":
            return self.uniq("city")
        if name == "status":
            return self.rng.choice(("potential", "intent", "closed"))
        if name == "tier":
            return self.rng.choice(("high", "mid", "low"))
        if name == "next_follow_up":
            return (
                (datetime(2026, 1, 1) + timedelta(days=self.rng.randrange(400))).date().isoformat()
            )
        raise AssertionError(name)

    def iso_now(self, device: Device) -> str:
        return datetime.fromtimestamp(device.clock.time(), UTC).isoformat(timespec="seconds")

    def insert(self, device: Device, collection: str, fields: dict[str, Any]) -> str:
        rid = self.uniq(collection[:4])
        record = device.store.collection(collection).insert(fields, id=rid)
        self._record(device, collection, record.id, "upsert", fields)
        return str(record.id)

    def update(self, device: Device, collection: str, rid: str, patch: dict[str, Any]) -> bool:
        col = device.store.collection(collection)
        before = col.get(rid)
        if before is None:
            return False
        changed = {k: v for k, v in patch.items() if before.get(k) != v or k not in before.fields}
        col.update(rid, patch)
        if changed:
            self._record(device, collection, rid, "upsert", changed)
        return True

    def delete(self, device: Device, collection: str, rid: str) -> None:
        device.store.collection(collection).delete(rid)
        self._record(device, collection, rid, "delete", {})

    def _record(
        self, device: Device, collection: str, rid: str, op: str, fields: dict[str, Any]
    ) -> None:
        hlc = (device.store._core.local.meta.get("hlc") or b"").decode()
        self.writes.append(
            Write(device.index, device.user_id, collection, rid, op, dict(fields), hlc, self.step)
        )
        self.stats[f"writes_{collection}_{op}"] += 1
