"""Helpers for live-sync tests against real server processes.

``EventStream`` reads ``GET /v1/sync/events`` on a thread and keeps every event;
``Device`` signs in as a user's device and pushes/pulls over HTTP like the SDK does.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from sync_protocol import HybridLogicalClock


@contextlib.contextmanager
def module_database() -> Iterator[str]:
    """A fresh PostgreSQL database (SQLAlchemy URL) for a module-scoped fixture; skipped
    like ``postgres_url`` when no server is reachable (a failure under CI=true)."""
    from tests.conftest import scratch_postgres

    with scratch_postgres() as url:
        yield url


@dataclass(frozen=True, slots=True)
class Event:
    name: str
    data: dict[str, Any]
    at: float


class EventStream:
    """One SSE connection, read on a thread until it ends or :meth:`close`."""

    def __init__(self, base_url: str, token: str, *, timeout_s: float = 60.0) -> None:
        self.url = f"{base_url}/v1/sync/events"
        self.token = token
        self.events: list[Event] = []
        self.status: int | None = None
        self.error_body: Any = None
        self.ended = threading.Event()
        self._lock = threading.Condition()
        self._client = httpx.Client(timeout=httpx.Timeout(timeout_s, connect=5.0))
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            headers = {"Authorization": f"Bearer {self.token}", "Accept": "text/event-stream"}
            with self._client.stream("GET", self.url, headers=headers) as response:
                self.status = response.status_code
                if response.status_code != 200:
                    response.read()
                    self.error_body = response.json()
                    return
                name, data = "message", ""
                for line in response.iter_lines():
                    if line == "":
                        if data:
                            self._add(Event(name, json.loads(data), time.monotonic()))
                        name, data = "message", ""
                    elif line.startswith("event:"):
                        name = line[6:].strip()
                    elif line.startswith("data:"):
                        data += line[5:].strip()
        except (httpx.HTTPError, RuntimeError):
            pass
        finally:
            self.ended.set()
            with self._lock:
                self._lock.notify_all()

    def _add(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)
            self._lock.notify_all()

    def wait_for(
        self, predicate: Callable[[Event], bool], timeout_s: float = 10.0, *, start: int = 0
    ) -> Event:
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while True:
                for event in self.events[start:]:
                    if predicate(event):
                        return event
                left = deadline - time.monotonic()
                if left <= 0 or (self.ended.is_set() and not self._thread.is_alive()):
                    names = [e.name for e in self.events]
                    raise AssertionError(f"no matching event within {timeout_s} s; got {names}")
                self._lock.wait(min(left, 0.1))

    def named(self, name: str) -> list[Event]:
        with self._lock:
            return [e for e in self.events if e.name == name]

    def close(self) -> None:
        self._client.close()
        self._thread.join(timeout=5)


class Device:
    """A device of ``username`` talking to ``base_url`` (which may change: failover)."""

    def __init__(
        self, base_url: str, username: str, password: str, device_id: str | None = None
    ) -> None:
        self.base_url = base_url
        self.username = username
        self.password = password
        self.device_id = device_id or f"dev-{username}-{uuid.uuid4().hex[:8]}"
        self.clock = HybridLogicalClock(self.device_id)
        self.checkpoint: str | None = None
        self.records: dict[tuple[str, str], dict[str, Any]] = {}
        self.token = ""
        self.login()

    def login(self) -> None:
        response = httpx.post(
            f"{self.base_url}/v1/auth/login",
            json={
                "username": self.username,
                "password": self.password,
                "device_id": self.device_id,
            },
            timeout=30,
        )
        response.raise_for_status()
        self.token = response.json()["access_token"]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def stream(self) -> EventStream:
        return EventStream(self.base_url, self.token)

    def push_customer(self, record_id: str, name: str) -> int:
        mutation = {
            "id": f"m-{uuid.uuid4().hex}",
            "collection": "customers",
            "record_id": record_id,
            "op": "upsert",
            "fields": {"name": name, "status": "potential"},
            "hlc": self.clock.now().encode(),
        }
        body = {"device_id": self.device_id, "schema_version": 1, "mutations": [mutation]}
        response = httpx.post(
            f"{self.base_url}/v1/sync/push", json=body, headers=self.headers, timeout=30
        )
        response.raise_for_status()
        result = response.json()["results"][0]
        assert result["status"] == "applied", result
        return int(result["version"])

    def pull(self) -> list[dict[str, Any]]:
        changes: list[dict[str, Any]] = []
        while True:
            body = {
                "device_id": self.device_id,
                "schema_version": 1,
                "checkpoint": self.checkpoint,
                "limit": 1000,
            }
            response = httpx.post(
                f"{self.base_url}/v1/sync/pull", json=body, headers=self.headers, timeout=30
            )
            response.raise_for_status()
            page = response.json()
            for change in page["changes"]:
                key = (change["collection"], change["record_id"])
                if change["op"] == "upsert":
                    self.records[key] = change["fields"]
                else:
                    self.records.pop(key, None)
            changes.extend(page["changes"])
            self.checkpoint = page["checkpoint"]
            if not page["has_more"]:
                return changes
