"""Webhook signatures: HMAC-SHA256 over the timestamp and the exact body bytes.

Every delivery carries ``X-Fieldsync-Signature: t=<unix seconds>,v1=<hex>`` where
``hex = HMAC_SHA256(secret, f"{t}.".encode() + body)``. A receiver recomputes it with
the secret it was given at subscription time, compares in constant time, and refuses a
timestamp older than a few minutes (a replayed delivery). :func:`verify` is that check,
for receivers written in Python; docs/manager-api.md shows it in a few lines.
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "X-Fieldsync-Signature"


def sign(secret: str, body: bytes, timestamp_s: int) -> str:
    """The header value for ``body`` sent at ``timestamp_s``."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp_s}.".encode() + body, hashlib.sha256)
    return f"t={timestamp_s},v1={mac.hexdigest()}"


def verify(
    secret: str, body: bytes, header: str, *, tolerance_s: int = 300, now_s: float | None = None
) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` within ``tolerance_s``."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError):
        return False
    now = time.time() if now_s is None else now_s
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, given)


__all__ = ["HEADER", "sign", "verify"]
