"""Request bodies leave gzip-encoded above a size threshold, and tiny ones stay plain.

The server inflates ``Content-Encoding: gzip`` bodies (tests/server covers that side);
a push batch shrinks ~5x, while gzip on a few hundred bytes costs more than it saves.
"""

from __future__ import annotations

import gzip
import json

import httpx

from client_sdk import HttpTransport, TransportRequest
from client_sdk._transports.http import DEFAULT_COMPRESS_MIN_BYTES


def _capture() -> tuple[list[httpx.Request], httpx.Client]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ok": True})

    return seen, httpx.Client(base_url="http://test", transport=httpx.MockTransport(handler))


def _body(size: int) -> dict[str, object]:
    return {"mutations": [{"id": f"m-{i}", "fields": {"name": "客户"}} for i in range(size)]}


def test_a_large_json_body_is_sent_gzip_encoded() -> None:
    seen, client = _capture()
    body = _body(200)
    HttpTransport(client=client).send(TransportRequest("POST", "/v1/sync/push", body))
    sent = seen[0]
    assert sent.headers["content-encoding"] == "gzip"
    assert json.loads(gzip.decompress(sent.content)) == body
    assert len(sent.content) * 3 < len(json.dumps(body, ensure_ascii=False).encode())


def test_a_tiny_body_goes_plain_and_the_threshold_is_configurable() -> None:
    seen, client = _capture()
    tiny = {"checkpoint": None, "limit": 10}
    assert len(json.dumps(tiny)) < DEFAULT_COMPRESS_MIN_BYTES
    HttpTransport(client=client).send(TransportRequest("POST", "/v1/sync/pull", tiny))
    assert "content-encoding" not in seen[0].headers
    assert json.loads(seen[0].content) == tiny
    HttpTransport(client=client, compress_min_bytes=None).send(
        TransportRequest("POST", "/v1/sync/push", _body(200))
    )
    assert "content-encoding" not in seen[1].headers


def test_raw_bytes_are_never_recompressed() -> None:
    seen, client = _capture()
    chunk = bytes(range(256)) * 64
    HttpTransport(client=client).send(TransportRequest("PUT", "/v1/chunk", content=chunk))
    assert "content-encoding" not in seen[0].headers and seen[0].content == chunk
