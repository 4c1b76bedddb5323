"""A customer's page shows the visit timeline with the GPS check-in and the visit's
photos as thumbnails, served to the console's session under the same scope rule as the
attachments API (team B's manager gets nothing)."""

from __future__ import annotations

import hashlib

import pytest

from tests.attachments.images import noise_png
from tests.server.conftest import World
from tests.server.console.conftest import Browser

CHUNK = 16 * 1024


def _upload(
    world: World, headers: dict[str, str], attachment_id: str, record_id: str, data: bytes
) -> None:
    client = world.client
    body = {
        "id": attachment_id,
        "collection": "activities",
        "record_id": record_id,
        "kind": "photo",
        "mime": "image/png",
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "chunk_size": CHUNK,
        "captured_at": "2026-11-23T10:00:00+00:00",
    }
    assert client.post("/v1/attachments", json=body, headers=headers).status_code in (200, 201)
    for index in range(0, -(-len(data) // CHUNK)):
        part = data[index * CHUNK : (index + 1) * CHUNK]
        response = client.put(
            f"/v1/attachments/{attachment_id}/chunks/{index}",
            content=part,
            headers={**headers, "Content-Type": "application/octet-stream"},
        )
        assert response.status_code == 200, response.text
    done = client.post(f"/v1/attachments/{attachment_id}/complete", headers=headers)
    assert done.status_code == 200, done.text


def test_timeline_with_check_in_and_photo_thumbnails(memory_world: World) -> None:
    pytest.importorskip("PIL.Image")
    world = memory_world
    phone = world.phone("rep_a1")
    phone.push_one("customers", "c-1", {"name": "张三", "status": "intent"})
    visit = {
        "customer_id": "c-1",
        "type": "visit",
        "occurred_at": "2026-11-23T10:00:00+00:00",
        "subject": "现场拜访",
        "check_in": {"lat": 31.23041, "lon": 121.47370, "accuracy_m": 12.0},
    }
    phone.push_one("activities", "v-1", visit)
    phone.push_one(
        "activities",
        "v-2",
        {
            **visit,
            "type": "call",
            "subject": "电话回访",
            "occurred_at": "2026-11-24T09:00:00+00:00",
        },
    )
    _upload(world, phone.headers, "ph-1", "v-1", noise_png(64, 48))

    mgr = Browser(world, "mgr_a")
    page = mgr.get("/console/customers/c-1").text
    assert page.index("电话回访") < page.index("现场拜访")  # newest first
    assert "31.23041, 121.47370" in page and "±12" in page
    assert 'src="/console/attachments/ph-1/thumbnail"' in page
    thumb = mgr.client.get("/console/attachments/ph-1/thumbnail")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert thumb.content[:2] == b"\xff\xd8"
    other = Browser(world, "mgr_b")
    assert other.client.get("/console/attachments/ph-1/thumbnail").status_code in (403, 404)
    assert other.client.get("/console/customers/c-1").status_code == 404
