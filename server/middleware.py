"""Request bodies: the size cap for every encoding, refused encodings, wire-safe JSON.

One ASGI middleware reads every request body before the routes do and answers for it:

* **Encodings.** ``Content-Encoding`` absent, ``identity`` or ``gzip`` (phones push large
  batches over slow links; gzip shrinks a batch ~5x). Anything else (``br``,
  ``deflate``, chains) → ``415 unsupported_media_type``; so does a JSON body declaring a
  charset other than UTF-8.
* **Size.** ``max_body_bytes`` caps the body *as the routes see it*: the raw bytes of a
  plain body (a ``Content-Length`` above the cap is refused before reading) and the
  decompressed bytes of a gzip body (a small "zip bomb" never grows past the cap)
  → ``413 payload_too_large``.
* **JSON.** A JSON body must be UTF-8 (UTF-16 or -32 is refused although Python's
  parser would guess it), parse, nest at most :data:`MAX_JSON_DEPTH` deep, and hold
  only values every store and every client can carry: no lone surrogate (``"\\ud800"``,
  which no UTF-8 encoder writes), no NUL character (PostgreSQL text refuses it), no
  integer outside the signed 64-bit range, no NaN or infinite number. Anything else
  → ``422 validation_failed`` naming the field, before a route (or a database) sees it;
  never a 500.

Responses are compressed by :class:`CompressionMiddleware`: gzip when the client's
``Accept-Encoding`` takes it (q-values honoured: ``gzip;q=0`` refuses it), written by
ISA-L (``isal``, ~5x faster than zlib at a better ratio than zlib level 3; plain zlib
when it is not installed). The output is ordinary gzip: every client decodes it. A route
that already compressed its body (the pull page, in its worker thread) is left alone,
and so are event streams and already-compressed media.
"""

from __future__ import annotations

import codecs
import json
import math
import re
import zlib
from types import ModuleType
from typing import Any

from pydantic_core import from_json
from starlette.middleware.gzip import GZipMiddleware, GZipResponder, IdentityResponder
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_fast_zlib: ModuleType | None
try:  # ISA-L: same gzip format, several times faster (a server dependency; optional)
    from isal import isal_zlib as _fast_zlib
except ImportError:  # pragma: no cover - exercised where isal has no wheel
    _fast_zlib = None

#: Deepest nesting of a JSON body (records are flat; custom fields nest a little).
MAX_JSON_DEPTH = 64
#: Integers a JSON body may carry: the signed 64-bit range of both databases.
MAX_INT = 2**63 - 1
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_NOT_JSON = frozenset({"invalid_encoding", "json_invalid"})
#: Scope key of the JSON document :class:`RequestBodyMiddleware` parsed and found
#: acceptable (absent when it parsed none).
PARSED_JSON = "fieldsync.parsed_json"
_UNREAD: Any = object()


class _Refused:
    """A value the JSON parser met that a body may not carry (reported with its path)."""

    __slots__ = ("code", "message")

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message


def _parse_int(text: str) -> int | _Refused:
    digits = len(text) - (text[0] == "-")
    if digits > 19 or not -MAX_INT - 1 <= (value := int(text)) <= MAX_INT:
        return _Refused("integer_too_large", "integers must fit in 64 bits")
    return value


def _parse_float(text: str) -> float | _Refused:
    value = float(text)
    if not math.isfinite(value):
        return _Refused("number_too_large", "numbers must be finite")
    return value


def _parse_constant(name: str) -> _Refused:
    return _Refused("invalid_number", f"{name} is not a JSON number")


def _text_problem(text: str) -> _Refused | None:
    found = _BAD_TEXT.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return _Refused("nul_character", "text may not contain the NUL character")
    return _Refused("invalid_unicode", "text holds a lone surrogate (not valid Unicode)")


def json_problems(body: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> list[dict[str, str]]:
    """Why ``body`` is not a wire-safe JSON document: ``[{field, code, message}]``, empty
    when it is one. ``field`` is the dotted path (``mutations.0.fields.name``)."""
    return checked_json(body, max_depth=max_depth)[1]


def checked_json(
    body: bytes, *, max_depth: int = MAX_JSON_DEPTH
) -> tuple[Any, list[dict[str, str]]]:
    """``body`` parsed, with :func:`json_problems`' findings: the document is the one a
    route would read only when the list is empty (the poll's fast path reads it).

    Most bodies are fine, and are found so quickly (:func:`_plainly_safe`: a parser in
    Rust on the raw bytes and one pass over the values); any doubt takes the walk that
    names each problem, on the decoded text."""
    document = _plainly_safe(body, max_depth)
    if document is not _DOUBT:
        return document, []
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None, [_problem("", "invalid_encoding", "the body is not UTF-8 text")]
    return _walk_problems(text, max_depth)


#: The only ways a JSON text spells a NUL or a lone surrogate: an escape (raw control
#: characters are invalid JSON, and UTF-8 cannot carry a surrogate).
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
#: :func:`_plainly_safe`'s "look closely".
_DOUBT: Any = object()


def _plainly_safe(body: bytes, max_depth: int) -> Any:
    """The parsed document when it holds nothing :func:`_walk_problems` would report —
    no suspect escape in the text and, over the parsed values, every integer in 64 bits,
    every float finite, nesting well within ``max_depth`` — else :data:`_DOUBT` ("look
    closely", not "refused").

    The parser is pydantic-core's ``from_json`` on the raw bytes (1,000 customers:
    ~2.2 ms against ~3.5 ms to decode and :func:`json.loads`; object keys are cached,
    the values, new in every push, are not): it refuses what :func:`json.loads` of the decoded text
    refuses — text that is not UTF-8, a byte-order mark, ``NaN``/``Infinity``, lone
    surrogates, raw control characters — and what it accepts it reads as
    :func:`json.loads` does, value for value (floats to the bit, key order, the last of
    duplicate keys, ``-0`` an integer); ``tests/server/test_push_wire.py`` holds the two
    equal. What it refuses is left to the walk, which answers as before."""
    if b"\\" in body and _SUSPECT_ESCAPE.search(body) is not None:
        return _DOUBT
    try:
        document = from_json(body, allow_inf_nan=False, cache_strings="keys")
    except (ValueError, RecursionError):
        return _DOUBT
    # Breadth first, one level of nesting at a time: the values of the containers in
    # ``level`` sit at path length ``depth + 1`` (the document itself at 0).
    level: list[Any] = [[document]]
    depth = -1
    while level:
        if depth >= max_depth:
            return _DOUBT
        deeper: list[Any] = []
        for container in level:
            for value in container.values() if container.__class__ is dict else container:
                t = value.__class__
                if t is str or t is bool or value is None:
                    continue
                if t is dict or t is list:
                    deeper.append(value)
                elif t is int:
                    if not -MAX_INT - 1 <= value <= MAX_INT:
                        return _DOUBT
                elif t is float:
                    if value - value != 0:  # NaN or ±infinity
                        return _DOUBT
                else:
                    return _DOUBT
        level = deeper
        depth += 1
    return document


def _walk_problems(text: str, max_depth: int) -> tuple[Any, list[dict[str, str]]]:
    """The body ``text`` (decoded) parsed, and every problem in it, with its path."""
    try:
        document = json.loads(
            text,
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_parse_constant,
        )
    except json.JSONDecodeError as exc:
        return None, [_problem("", "json_invalid", f"the body is not JSON: {exc.msg} at {exc.pos}")]
    except RecursionError:
        return None, [_problem("", "too_deep", f"JSON nests deeper than {max_depth} levels")]
    problems: list[dict[str, str]] = []
    stack: list[tuple[Any, tuple[str, ...]]] = [(document, ())]
    while stack and len(problems) < 20:
        value, path = stack.pop()
        if len(path) > max_depth:
            problems.append(
                _problem(".".join(path), "too_deep", f"JSON nests deeper than {max_depth}")
            )
            continue
        refused: _Refused | None = None
        if isinstance(value, _Refused):
            refused = value
        elif isinstance(value, str):
            refused = _text_problem(value)
        elif isinstance(value, dict):
            for key, item in value.items():
                key_problem = _text_problem(key)
                if key_problem is not None:
                    where = ".".join((*path, repr(key)))
                    problems.append(_problem(where, key_problem.code, key_problem.message))
                    continue
                stack.append((item, (*path, key)))
        elif isinstance(value, list):
            stack.extend((item, (*path, str(i))) for i, item in enumerate(value))
        if refused is not None:
            problems.append(_problem(".".join(path), refused.code, refused.message))
    return document, problems


def _problem(field: str, code: str, message: str) -> dict[str, str]:
    return {"field": field, "code": code, "message": message}


def _error(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> tuple[int, bytes]:
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    return status, json.dumps(body).encode()


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    return next((v for k, v in headers if k == name), None)


def _is_json(content_type: bytes | None) -> bool:
    if content_type is None:
        return True  # FastAPI reads a body without a type as JSON
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or media.endswith(b"+json")


def _charset(content_type: bytes | None) -> str | None:
    if content_type is None:
        return None
    for param in content_type.split(b";")[1:]:
        name, _, value = param.partition(b"=")
        if name.strip().lower() == b"charset":
            return value.strip().strip(b'"').decode("latin-1").lower()
    return None


class _TooLarge(Exception):
    pass


class _Disconnected(Exception):
    pass


class RequestBodyMiddleware:
    """Reads, caps, decodes and checks every request body (see the module docstring)."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = list(scope.get("headers", []))
        if not self._has_body(scope, headers):
            await self.app(scope, receive, send)
            return
        refused = self._refuse_by_headers(headers)
        if refused is not None:
            await _respond(send, *refused)
            return
        encoding = (_header(headers, b"content-encoding") or b"").strip().lower()
        try:
            raw = await self._read(receive)
        except _TooLarge:
            await _respond(send, *self._too_large())
            return
        except _Disconnected:
            return
        body = raw
        if encoding == b"gzip":
            try:
                inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
                body = inflater.decompress(raw, self.max_body_bytes + 1)
            except zlib.error:
                await _respond(
                    send, *_error(422, "validation_failed", "the body is not valid gzip")
                )
                return
            if len(body) > self.max_body_bytes or inflater.unconsumed_tail:
                await _respond(send, *self._too_large())
                return
        content_type = _header(headers, b"content-type")
        document: Any = _UNREAD
        if body and _is_json(content_type):
            document, problems = checked_json(body)
            if problems or body.startswith(codecs.BOM_UTF8):
                document = _UNREAD  # a route parses it (and refuses what it must) itself
            if content_type is None:
                # Untyped: FastAPI reads it as JSON only on a JSON route, a raw route
                # (attachment chunks) takes the bytes. Refuse what would be read as
                # unsafe JSON; leave what is no JSON at all to the route.
                problems = [p for p in problems if p["code"] not in _NOT_JSON]
            if problems:
                status, payload = _error(
                    422,
                    "validation_failed",
                    "the request body is not acceptable JSON",
                    {"fields": problems},
                )
                await _respond(send, status, payload)
                return
        new_scope = dict(scope)
        if document is not _UNREAD:
            # Parsed once: a route that reads it (the push) does not parse it again.
            new_scope[PARSED_JSON] = document
        new_scope["headers"] = [
            (k, v) for k, v in headers if k not in (b"content-encoding", b"content-length")
        ] + [(b"content-length", str(len(body)).encode())]
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        try:
            await self.app(new_scope, replay, send)
        finally:
            # The router records the matched route in the scope it was given (the copy);
            # the outer observability middleware labels metrics and the access line
            # from its own scope, so the match is handed back (FastAPI ≥ 0.165 no longer
            # lets it be found again by walking the app's routes).
            if "route" in new_scope:
                scope["route"] = new_scope["route"]

    @staticmethod
    def _has_body(scope: Scope, headers: list[tuple[bytes, bytes]]) -> bool:
        if scope.get("method") in _BODY_METHODS:
            return True
        length = _header(headers, b"content-length")
        return (length not in (None, b"0")) or _header(headers, b"transfer-encoding") is not None

    def _refuse_by_headers(self, headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes] | None:
        encoding = (_header(headers, b"content-encoding") or b"").strip().lower()
        if encoding not in (b"", b"identity", b"gzip"):
            return _error(
                415,
                "unsupported_media_type",
                "Content-Encoding must be gzip or identity",
                {"content_encoding": encoding.decode("latin-1")[:64]},
            )
        content_type = _header(headers, b"content-type")
        charset = _charset(content_type)
        if _is_json(content_type) and charset not in (None, "utf-8", "utf8"):
            return _error(
                415,
                "unsupported_media_type",
                "JSON bodies must be UTF-8",
                {"charset": charset[:32]},
            )
        length = _header(headers, b"content-length")
        if length is not None and encoding != b"gzip":
            try:
                declared = int(length)
            except ValueError:
                return _error(422, "validation_failed", "Content-Length is not a number")
            if declared > self.max_body_bytes:
                return self._too_large()
        return None

    def _too_large(self) -> tuple[int, bytes]:
        return _error(
            413,
            "payload_too_large",
            f"the request body is larger than {self.max_body_bytes} bytes",
            {"max_body_bytes": self.max_body_bytes},
        )

    async def _read(self, receive: Receive) -> bytes:
        """The whole raw body; :class:`_TooLarge` as soon as it passes the cap (a gzip
        body is compressed: its raw size is capped at the same bound)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


async def _respond(send: Send, status: int, payload: bytes) -> None:
    headers: list[Any] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


# ---- response compression -----------------------------------------------------------

GZIP = "gzip"
IDENTITY = "identity"
#: Whether responses are written by ISA-L (else zlib).
FAST_GZIP = _fast_zlib is not None


def _isal_level(level: int) -> int:
    """zlib's 1..9 onto ISA-L's 0..3 (ISA-L 1 is smaller than zlib 3, and ~5x faster)."""
    return 0 if level <= 1 else 1 if level <= 3 else 2 if level <= 6 else 3


def gzip_compressor(level: int) -> Any:
    """A gzip-format streaming compressor (``compress``/``flush``) at ``level`` (1..9)."""
    if _fast_zlib is not None:
        return _fast_zlib.compressobj(_isal_level(level), _fast_zlib.DEFLATED, 16 + 15)
    return zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)


def gzip_bytes(body: bytes, level: int) -> bytes:
    """``body`` as one gzip member."""
    compressor = gzip_compressor(level)
    return bytes(compressor.compress(body) + compressor.flush())


def accepted_encoding(accept_encoding: str | None) -> str:
    """The response encoding for this ``Accept-Encoding``: ``gzip`` when the client takes
    it (by name or ``*``, with a q-value above 0), else ``identity``."""
    if not accept_encoding:
        return IDENTITY
    weights: dict[str, float] = {}
    for item in accept_encoding.split(","):
        name, _, params = item.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        weights[name.strip().lower()] = q
    gzip_q = weights.get(GZIP, weights.get("x-gzip", weights.get("*", 0.0)))
    return GZIP if gzip_q > 0 else IDENTITY


class _FastGZipResponder(GZipResponder):
    """Starlette's responder (streaming, thresholds, excluded types) with ISA-L."""

    @property
    def compressor(self) -> Any:
        if self._compressor is None:
            self._compressor = gzip_compressor(self.compresslevel)
        return self._compressor

    async def apply_compression(self, body: bytes, *, more_body: bool) -> bytes:
        if FAST_GZIP and not more_body and len(body) < 4 * 1024 * 1024:
            # ~1 ms for 3 MB: cheaper inline than a hop to a worker thread.
            return self._compress_body(body, more_body)
        return await super().apply_compression(body, more_body=more_body)

    def _compress_body(self, body: bytes, more_body: bool) -> bytes:
        if more_body:
            return bytes(self.compressor.compress(body) + self.compressor.flush(zlib.Z_SYNC_FLUSH))
        return bytes(self.compressor.compress(body) + self.compressor.flush())


class CompressionMiddleware(GZipMiddleware):
    """Compresses responses as the client's ``Accept-Encoding`` allows (module docstring)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        accept = _header(list(scope.get("headers", [])), b"accept-encoding")
        responder: ASGIApp
        if accepted_encoding(accept.decode("latin-1") if accept else None) == GZIP:
            responder = _FastGZipResponder(
                self.app,
                self.minimum_size,
                compresslevel=self.compresslevel,
                thread_minimum_size=self.thread_minimum_size,
                exclude_content_types=self.exclude_content_types,
            )
        else:
            responder = IdentityResponder(
                self.app, self.minimum_size, exclude_content_types=self.exclude_content_types
            )
        await responder(scope, receive, send)
