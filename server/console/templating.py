"""Jinja2 rendering of console pages: autoescaped HTML, the translator and the session's
CSRF token in every page's context, and the security headers every page carries.

Charts get their figures as JSON in ``<script type="application/json">`` blocks (the
``tojson`` filter escapes ``<``, ``>`` and ``&``), never as inline script, so the
Content-Security-Policy can forbid inline scripts outright.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import ChainableUndefined, Environment, FileSystemLoader, select_autoescape

from .assets import asset_url
from .i18n import Translator, negotiate, translator
from .session import CSRF_FIELD, ConsoleUser

TEMPLATES = Path(__file__).with_name("templates")

#: No inline script, nothing from another host. Inline *styles* are allowed: ECharts
#: positions its tooltips with them.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _when(ms_or_dt: Any, lang: str = "zh") -> str:
    """A timestamp as local-looking text (UTC, minutes)."""
    if ms_or_dt is None or ms_or_dt == "":
        return ""
    if isinstance(ms_or_dt, int | float):
        moment = datetime.fromtimestamp(ms_or_dt / 1000, UTC)
    elif isinstance(ms_or_dt, datetime):
        moment = ms_or_dt if ms_or_dt.tzinfo else ms_or_dt.replace(tzinfo=UTC)
    else:
        text = str(ms_or_dt)
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return text
        if "T" not in text:
            return text[:10]
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _money(value: Any) -> str:
    if value is None or value == "":
        return ""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{number:,.0f}" if number == int(number) else f"{number:,.2f}"


def _query(base: dict[str, Any], **changes: Any) -> str:
    """``?…`` of the current filters with some changed (``None`` drops a key)."""
    merged = {**base, **changes}
    pairs: list[tuple[str, str]] = []
    for key, value in merged.items():
        if value is None or value == "":
            continue
        if isinstance(value, list | tuple):
            pairs.extend((key, str(v)) for v in value)
        else:
            pairs.append((key, str(value)))
    return "?" + urlencode(pairs) if pairs else "?"


def _dict_row(item: Any, *keys: str) -> list[Any]:
    """``{"name": "a", "count": 2}`` -> ``["a", 2]`` (a table row of a chart's figures)."""
    return [_money(item[k]) if isinstance(item[k], float) else item[k] for k in keys]


def _translate_first(row: list[Any], t: Translator) -> list[Any]:
    return [t.choice(row[0]), *row[1:]] if row else row


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(["html"], default=True),
        undefined=ChainableUndefined,  # record fields are optional: a missing one is blank
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["money"] = _money
    env.filters["dict_row"] = _dict_row
    env.filters["translate_first"] = _translate_first
    env.globals["asset"] = asset_url
    env.globals["query"] = _query
    env.globals["csrf_field"] = CSRF_FIELD
    return env


ENV = _environment()


def render(
    request: Request,
    template: str,
    *,
    me: ConsoleUser | None = None,
    status: int = 200,
    t: Translator | None = None,
    **context: Any,
) -> HTMLResponse:
    tr = t or translator(negotiate(request))
    html = ENV.get_template(template).render(
        request=request,
        t=tr,
        lang=tr.lang,
        me=me,
        csrf=me.csrf if me else "",
        path=request.url.path,
        current_url=str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""),
        **context,
    )
    return HTMLResponse(html, status_code=status, headers=dict(SECURITY_HEADERS))
