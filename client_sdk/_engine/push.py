"""Push: outbox entries → the body of ``POST /v1/sync/push``.

What the answer means for each entry is read by :func:`.responses.read_push` into a
:class:`.responses.PushPlan`.
"""

from __future__ import annotations

from typing import Any

from sync_protocol import Mutation, PushRequest

from .._rows import LocalCounts, Pending
from .health import DeviceInfo, device_status


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
        override=p.override,  # type: ignore[arg-type]  # checked by the model
    )


def build_request(
    batch: list[Pending], counts: LocalCounts, *, device_id: str, device: DeviceInfo, now: float
) -> dict[str, Any]:
    """The JSON body of ``POST /v1/sync/push`` for ``batch``, with the device's report
    (validated on the way)."""
    request = PushRequest(
        device_id=device_id,
        schema_version=device.schema_version,
        schema_name=device.schema_name,
        mutations=[to_mutation(p) for p in batch],
        device_status=device_status(counts, device, now),  # type: ignore[arg-type]
    )
    body: dict[str, Any] = request.model_dump(mode="json", exclude_none=True)
    return body
