"""Push: outbox entries → a ``PushRequest``; a ``PushResponse`` → a plan for the store.

The answer is read tolerantly (unknown fields ignored, unknown statuses handled by a
rule) and turned into a :class:`PushPlan` the local store executes in one transaction:

* an **acknowledged** entry (applied, merged, conflict, duplicate) leaves the outbox and
  is folded into the server copy — the server's whole record when it sent one
  (``merged``/``conflict``), else the entry's own patch (``applied``/``duplicate``);
  conflicts the entry resolves are marked resolved;
* a **refused** entry (``rejected``, including ``group_rejected``; a ``duplicate`` of a
  refused original, which carries its error) moves to the dead letters with the error;
* an answer with a status this SDK does not know counts as refused when it carries an
  error, else as acknowledged without a copy (the next pull brings the record).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from sync_protocol import Mutation, PushRequest

from .._rows import Pending

CopyChange = Literal["patch", "replace", "drop"]

_KNOWN = frozenset({"applied", "merged", "conflict", "rejected", "duplicate"})


def to_mutation(p: Pending) -> Mutation:
    """The wire form of one outbox entry."""
    return Mutation(
        id=p.id,
        collection=p.collection,
        record_id=p.record_id,
        op="delete" if p.op == "delete" else "upsert",
        base_version=p.base_version,
        fields=p.fields if p.op != "delete" else {},
        base=p.base,
        hlc=p.hlc,
        resolves=p.resolves,
        group=p.group,
    )


def build_request(
    batch: list[Pending],
    *,
    device_id: str,
    schema_version: int,
    device_status: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON body of ``POST /v1/sync/push`` for ``batch`` (validated on the way)."""
    request = PushRequest(
        device_id=device_id,
        schema_version=schema_version,
        mutations=[to_mutation(p) for p in batch],
        device_status=device_status,  # type: ignore[arg-type]  # validated by the model
    )
    body: dict[str, Any] = request.model_dump(mode="json", exclude_none=True)
    return body


@dataclass(frozen=True, slots=True)
class Ack:
    """An acknowledged entry. ``copy``: how the server copy changes — ``patch`` (its
    live fields updated with ``fields``), ``replace`` (becomes ``fields``), ``drop``
    (removed), ``None`` (unchanged). ``version``: ``None`` keeps the copy's version."""

    entry: Pending
    copy: CopyChange | None
    fields: dict[str, Any] | None
    version: int | None


@dataclass(frozen=True, slots=True)
class Reject:
    entry: Pending
    error: dict[str, Any]


@dataclass(slots=True)
class PushPlan:
    acks: list[Ack] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    #: answers per status (``rejected`` includes refused duplicates; unknown: ``other``)
    counts: dict[str, int] = field(default_factory=dict)
    server_hlc: str | None = None
    #: (code, message) of the answer's warnings, e.g. ``clock_skew``
    warnings: list[tuple[str, str]] = field(default_factory=list)

    @property
    def clock_warning(self) -> str | None:
        return next((m for c, m in self.warnings if c == "clock_skew"), None)

    @property
    def answered(self) -> int:
        return len(self.acks) + len(self.rejects)


def plan_push(batch: list[Pending], content: bytes) -> PushPlan:
    """Read a push answer for ``batch``; raises ``ValueError`` when it is not one."""
    try:
        body = json.loads(content)
        results = body["results"]
        if not isinstance(results, list):
            raise TypeError("results is not a list")
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"not a valid push answer: {exc}") from None
    plan = PushPlan(server_hlc=_str(body.get("server_hlc")))
    for warning in body.get("warnings") or ():
        if isinstance(warning, dict):
            plan.warnings.append((str(warning.get("code", "")), str(warning.get("message", ""))))
    by_id = {p.id: p for p in batch}
    for raw in results:
        mutation_id = raw.get("mutation_id") if isinstance(raw, dict) else None
        entry = by_id.pop(mutation_id, None) if isinstance(mutation_id, str) else None
        if entry is not None:
            _plan_one(plan, entry, raw)
    return plan


def _plan_one(plan: PushPlan, entry: Pending, raw: dict[str, Any]) -> None:
    status = raw.get("status")
    error = raw.get("error") if isinstance(raw.get("error"), dict) else None
    refused = status == "rejected" or (error is not None and status != "applied")
    key = "rejected" if refused else (status if status in _KNOWN else "other")
    plan.counts[key] = plan.counts.get(key, 0) + 1
    if refused:
        plan.rejects.append(Reject(entry, dict(error or {})))
        return
    version = raw.get("version")
    version = version if type(version) is int else None
    record = raw.get("record") if isinstance(raw.get("record"), dict) else None
    plain = status in ("applied", "duplicate")
    copy: CopyChange | None = None
    fields: dict[str, Any] | None = None
    if entry.op == "delete":
        if record is not None:
            copy, fields = "replace", dict(record)
        elif plain:
            copy = "drop"
    elif record is not None:
        copy, fields = "patch", dict(record)
    elif plain:
        copy, fields = "patch", dict(entry.fields)
    plan.acks.append(Ack(entry, copy, fields, version))


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
