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

Every answer is read tolerantly. An error body with an unknown code, no message or no
JSON at all still gives a usable :class:`ErrorInfo` (code ``http_<status>`` at worst).
A push answer (:func:`read_push`) and a pull page (:func:`read_page`) ignore fields
this SDK does not know; a pulled change whose ``op`` it does not know is *skipped*
(counted in ``PulledPage.skipped``) — the protocol guarantees that a change kind that
must not be skipped only comes with a new protocol version; a mutation status it does
not know counts as refused when it carries an error, else as acknowledged. A known part
that is malformed is a protocol violation (``ValueError``).

Pull pages are read by hand, not with pydantic: on an initial sync this runs for every
record, and building a model per change costs more than decrypting it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from json.scanner import make_scanner
from typing import Any, Literal

from .._rows import Pending
from .pull import PulledChange, PulledPage

CopyChange = Literal["patch", "replace", "drop"]

_KNOWN = frozenset({"applied", "merged", "conflict", "rejected", "duplicate"})
_OPS = frozenset({"upsert", "delete", "evict"})

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


def read_push(batch: list[Pending], content: bytes) -> PushPlan:
    """Read a push answer for ``batch`` into the plan the local store carries out in one
    transaction; raises ``ValueError`` when it is not a push answer.

    * an **acknowledged** entry (applied, merged, conflict, duplicate) leaves the outbox
      and is folded into the server copy — the server's whole record when it sent one
      (``merged``/``conflict``), else the entry's own patch (``applied``/``duplicate``);
      conflicts the entry resolves are marked resolved;
    * a **refused** entry (``rejected``, including ``group_rejected``; a ``duplicate`` of
      a refused original, which carries its error) moves to the dead letters;
    * a status this SDK does not know counts as refused when it carries an error, else
      as acknowledged without a copy (the next pull brings the record).
    """
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


#: The page layout this server writes (``server/repository/pull.py``): no whitespace,
#: each change's keys in this order, ``fields`` last. A page in any other layout — or
#: one this reader is not sure of (escapes in an id, a huge version, a key it does not
#: expect) — is read by the general path instead, with the same result.
_PAGE_START = re.compile(r'\{(?:"protocol":[0-9]{1,9},)?"changes":\[')
_CHANGE_HEAD = re.compile(
    r'\{"collection":"([^"\\\x00-\x1f]*)","record_id":"([^"\\\x00-\x1f]*)",'
    r'"version":(0|[1-9][0-9]{0,17}),"op":"(?:(upsert)","fields":|(delete|evict)"\})'
)
#: The json module's C scanner: ``scan(text, i)`` decodes the value at ``i`` and says
#: where it ends (it raises ``StopIteration`` when there is none).
_scan: Callable[[str, int], tuple[Any, int]] = make_scanner(json.JSONDecoder())  # type: ignore[arg-type]


def read_page(content: bytes) -> PulledPage:
    """Decode a pull answer; raises ``ValueError`` when it is not one.

    A page in the server's own layout is read on a fast path that keeps, instead of
    each upsert's decoded ``fields``, the exact JSON text they decode from
    (``PulledChange.raw``; :meth:`PulledChange.decoded` gives the fields): storing it
    needs no encoding again, and no decoded record outlives the read. Any other page —
    or any doubt — takes the general path (``json.loads``), which keeps ``fields``."""
    try:
        fast = _read_canonical(content)
    except (ValueError, KeyError, TypeError, IndexError, StopIteration, RecursionError):
        fast = None
    return fast if fast is not None else _read_general(content)


def _read_canonical(content: bytes) -> PulledPage | None:
    """The fast path: each change's head matched by a regular expression, its fields
    decoded by the C scanner, which also gives the exact span of their text. ``None``
    (or an exception) sends the page to the general path."""
    text = content.decode("utf-8")
    start = _PAGE_START.match(text)
    if start is None:
        return None
    pos = start.end()
    changes: list[PulledChange] = []
    append, head, scan = changes.append, _CHANGE_HEAD.match, _scan
    if text[pos] != "]":
        while True:
            m = head(text, pos)
            if m is None:
                return None
            collection, record_id, version, upsert, gone = m.groups()
            if upsert:
                begin = m.end()
                fields, end = scan(text, begin)  # decoded to check and to find the end
                if type(fields) is not dict or text[end] != "}":
                    return None
                raw = text[begin:end].encode()
                append(PulledChange(collection, record_id, int(version), upsert, None, raw))
                pos = end + 1
            else:
                append(PulledChange(collection, record_id, int(version), gone, None))
                pos = m.end()
            if text[pos] != ",":
                break
            pos += 1
        if text[pos] != "]":
            return None
    # the rest of the envelope: `,"checkpoint":…}` (one more JSON object's members)
    rest = text[pos + 1 :]
    body = json.loads("{" + rest[1:]) if rest[:1] == "," else json.loads(rest)
    if type(body) is not dict or "changes" in body:
        return None
    return _page(body, changes, 0)


def _read_general(content: bytes) -> PulledPage:
    try:
        body = json.loads(content)
        changes = []
        skipped = 0
        for ch in body["changes"]:
            op = ch["op"]
            if op not in _OPS:
                skipped += 1
                continue
            collection, record_id, version = ch["collection"], ch["record_id"], ch["version"]
            fields = ch.get("fields")
            if (
                type(collection) is not str
                or type(record_id) is not str
                or type(version) is not int
                or (fields is not None and type(fields) is not dict)
                or (op == "upsert" and fields is None)
            ):
                raise ValueError(f"malformed change {record_id!r}")
            changes.append(PulledChange(collection, record_id, version, op, fields))
        return _page(body, changes, skipped)
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"not a valid pull page: {exc}") from None


def _page(body: dict[str, Any], changes: list[PulledChange], skipped: int) -> PulledPage:
    checkpoint, has_more = body["checkpoint"], body["has_more"]
    remaining, server_hlc = body.get("remaining"), body.get("server_hlc")
    if type(checkpoint) is not str or type(has_more) is not bool:
        raise ValueError("malformed checkpoint")
    if remaining is not None and type(remaining) is not int:
        remaining = None
    if server_hlc is not None and type(server_hlc) is not str:
        server_hlc = None
    return PulledPage(changes, checkpoint, has_more, server_hlc, remaining, skipped)
