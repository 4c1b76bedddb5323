"""Structured logs: one JSON object per line, each with the request id.

``request_id`` lives in a context variable set by
:class:`~server.observability.middleware.ObservabilityMiddleware` for the duration of a
request, so every line logged while serving it — by the routes, the repository, the
error handlers — carries it without being passed around.

**What never reaches a log**: request and response bodies (passwords, tokens, record
fields), headers (the bearer token), query strings (searches for customers' names).
Only whitelisted fields of a record are written (:data:`FIELDS`); an exception is logged
as its type and stack frames, its message only when it is one of our own protocol
errors (other messages can quote data — a database error quotes the row it refused);
SQLAlchemy is told to keep statement parameters out of its error messages.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from contextvars import ContextVar
from typing import Any

from sync_protocol import ProtocolError

request_id_var: ContextVar[str | None] = ContextVar("fieldsync_request_id", default=None)

#: Extra fields a log record may carry into the JSON line (``log.info(..., extra={})``).
FIELDS = (
    "method",
    "route",
    "path",
    "status",
    "duration_ms",
    "device_id",
    "user_id",
    "event",
    "code",
    "count",
    "deleted",
    "horizon",
    "kind",
    "seconds",
)


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", "request_id", …}`` on one line.

    Building it also turns off what :mod:`logging` gathers for every record but this
    format never prints (the caller's file and line — a stack walk —, thread and process
    names): the access line is written on every request, so its cost is kept small."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        logging._srcfile = None  # type: ignore[attr-defined]
        logging.logThreads = False
        logging.logProcesses = False
        logging.logMultiprocessing = False

    def format(self, record: logging.LogRecord) -> str:
        seconds = int(record.created)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        line: dict[str, Any] = {
            "ts": f"{stamp}.{int((record.created - seconds) * 1000):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id and request_id != "-":
            line["request_id"] = request_id
        for name in FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                line[name] = value
        if record.exc_info and record.exc_info[1] is not None:
            line.update(describe_exception(record.exc_info[1]))
        return json.dumps(line, ensure_ascii=False, default=str)


def describe_exception(exc: BaseException) -> dict[str, Any]:
    """Type and stack frames; the message only for our own (safe) protocol errors."""
    frames = [
        f"{frame.filename}:{frame.lineno} in {frame.name}"
        for frame in traceback.extract_tb(exc.__traceback__)
    ]
    described: dict[str, Any] = {"exc_type": type(exc).__name__, "stack": frames[-12:]}
    if isinstance(exc, ProtocolError):
        described["exc_message"] = exc.message
    return described


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to text-format records (``%(request_id)s``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get() or "-"
        return True


def logging_config(level: str, fmt: str) -> dict[str, Any]:
    """A :func:`logging.config.dictConfig` for the server process (uvicorn applies it in
    every worker): our loggers and uvicorn's to stderr, JSON lines or plain text.
    uvicorn's own access log is off — it would print query strings; the server writes
    its own access line per request (``fieldsync.access``)."""
    formatter = (
        {"()": "server.observability.logs.JsonFormatter"}
        if fmt == "json"
        else {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"}
    )
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "main",
        "filters": ["request_id"],
        "stream": "ext://sys.stderr",
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "server.observability.logs.RequestIdFilter"}},
        "formatters": {"main": formatter},
        "handlers": {"main": handler},
        "loggers": {
            "fieldsync": {"handlers": ["main"], "level": level.upper(), "propagate": False},
            "uvicorn": {"handlers": ["main"], "level": level.upper(), "propagate": False},
            "uvicorn.error": {"level": level.upper()},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
        "root": {"handlers": ["main"], "level": "WARNING"},
    }
