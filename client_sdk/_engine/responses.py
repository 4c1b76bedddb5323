"""The one table from an answer to what happens next, and tolerant reading of errors.

Every request the SDK makes — sync, login, attachments — goes through the runner's one
loop, which asks :func:`decide` what an answer means:

======================================  ==========  =====================================
answer                                  action      what the runner does
======================================  ==========  =====================================
2xx                                     ``ok``      hand the body on
no answer (network error)               ``retry``   back off (full jitter), same request
429, 500, 502, 503, 504                 ``retry``   back off, honouring ``Retry-After``
401                                     ``refresh`` refresh the token once, same request
code ``device_revoked`` (any status)    ``revoked`` stop syncing; erase if ``details.wipe``
410 or code ``resync_required``         ``resync``  forget the checkpoint, pull everything
anything else                           ``fail``    raise a typed error with the code
======================================  ==========  =====================================

Error bodies are read tolerantly: an unknown code, a missing message or a body that is
not JSON still gives a usable :class:`ErrorInfo` (code ``http_<status>`` at worst).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

#: The status the runner passes for "no answer arrived" (a network error).
NO_ANSWER = 0


class Action(StrEnum):
    OK = "ok"
    RETRY = "retry"
    REFRESH = "refresh"
    RESYNC = "resync"
    REVOKED = "revoked"
    FAIL = "fail"


_BY_CODE: dict[str, Action] = {
    "device_revoked": Action.REVOKED,
    "resync_required": Action.RESYNC,
}
_BY_STATUS: dict[int, Action] = {
    NO_ANSWER: Action.RETRY,
    401: Action.REFRESH,
    410: Action.RESYNC,
    429: Action.RETRY,
    500: Action.RETRY,
    502: Action.RETRY,
    503: Action.RETRY,
    504: Action.RETRY,
}


def decide(status: int, code: str | None = None) -> Action:
    """What an answer with ``status`` (and error ``code``) means; see the module table."""
    if 200 <= status < 300:
        return Action.OK
    if code is not None and code in _BY_CODE:
        return _BY_CODE[code]
    return _BY_STATUS.get(status, Action.FAIL)


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    status: int
    code: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)


def read_error(status: int, content: bytes) -> ErrorInfo:
    """The ``{"error": {code, message, details}}`` of an answer, whatever it holds."""
    try:
        err = json.loads(content)["error"]
        code = err["code"]
        if not isinstance(code, str) or not code:
            raise TypeError("no code")
        details = err.get("details")
        return ErrorInfo(
            status,
            code,
            str(err.get("message") or ""),
            dict(details) if isinstance(details, dict) else {},
        )
    except (ValueError, KeyError, TypeError):
        return ErrorInfo(status, f"http_{status}", f"the server answered HTTP {status}")


def retry_after(headers: Mapping[str, str], details: Mapping[str, Any]) -> float | None:
    """Seconds the server asked to wait (``Retry-After`` or ``details.retry_after_s``)."""
    raw = headers.get("retry-after") or headers.get("Retry-After") or details.get("retry_after_s")
    try:
        return float(raw) if raw is not None else None
    except (TypeError, ValueError):
        return None
