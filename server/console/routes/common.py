"""What every console router shares."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import RedirectResponse


def page_router() -> APIRouter:
    """Console pages are not part of the API's OpenAPI document."""
    return APIRouter(prefix="/console", include_in_schema=False)


def safe_next(target: str | None, default: str = "/console/") -> str:
    """Only a path inside the console: no open redirect to another site."""
    unsafe = not target or not target.startswith("/console") or target.startswith("//")
    if unsafe or any(c in (target or "") for c in "\\\r\n"):
        return default
    return str(target)


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


#: Excel (and WPS) read a CSV as UTF-8 only when it starts with a byte-order mark.
BOM = "\ufeff".encode()
