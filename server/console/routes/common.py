"""What every console router shares."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import RedirectResponse


def page_router() -> APIRouter:
    """Console pages are not part of the API's OpenAPI document."""
    return APIRouter(prefix="/console", include_in_schema=False)


def safe_next(target: str | None, default: str = "/console/") -> str:
    """Only a path inside the console: no open redirect to another site."""
    if target and target.startswith("/console") and not target.startswith("//"):
        if "\\" not in target and "\n" not in target and "\r" not in target:
            return target
    return default


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)

#: Excel (and WPS) read a CSV as UTF-8 only when it starts with a byte-order mark.
BOM = "\ufeff".encode()
