"""The JSON log line: request id from the context, whitelisted fields only, and an
exception's message only when it is one of the server's own protocol errors."""

from __future__ import annotations

import json
import logging
import sys

from server.observability.logs import JsonFormatter, request_id_var
from sync_protocol import ValidationFailed


def _line(record: logging.LogRecord) -> dict[str, object]:
    line: dict[str, object] = json.loads(JsonFormatter().format(record))
    return line


def _record(msg: str, exc: BaseException | None = None, **extra: object) -> logging.LogRecord:
    info = None
    if exc is not None:
        try:
            raise exc
        except BaseException:
            info = sys.exc_info()
    record = logging.LogRecord("fieldsync.test", logging.ERROR, __file__, 1, msg, None, info)
    record.__dict__.update(extra)
    return record


def test_fields_are_whitelisted_and_the_request_id_comes_along() -> None:
    token = request_id_var.set("req-7")
    try:
        line = _line(_record("hello", route="/v1/sync/push", body={"password": "hunter2"}))
    finally:
        request_id_var.reset(token)
    assert line["request_id"] == "req-7" and line["route"] == "/v1/sync/push"
    assert "body" not in line and "hunter2" not in json.dumps(line)
    assert str(line["ts"]).endswith("Z") and line["level"] == "error"


def test_exception_messages_are_kept_only_for_protocol_errors() -> None:
    leaky = RuntimeError("INSERT failed for customer 张三 phone +86 139 0000 0000")
    line = _line(_record("boom", leaky))
    assert line["exc_type"] == "RuntimeError" and line["stack"]
    assert "张三" not in json.dumps(line, ensure_ascii=False)
    ours = _line(_record("refused", ValidationFailed("customers: name is required")))
    assert ours["exc_message"] == "customers: name is required"
