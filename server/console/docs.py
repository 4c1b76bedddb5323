"""``/docs``: Swagger UI served from the server's own files (no CDN), with Authorize.

FastAPI's default ``/docs`` page loads Swagger UI from a CDN, which fails on a LAN
without internet and is unreliable in mainland China; ``create_app`` turns it off and
this module serves the same page with the vendored bundle. Authorize takes the
``access_token`` from ``POST /v1/auth/login``: the explorer reads ``/docs/openapi.json``,
which is ``/openapi.json`` plus — when the routes' dependencies do not declare one yet —
the bearer scheme Authorize needs (:func:`declare_bearer`);
``persistAuthorization`` keeps it across reloads until it expires (15 minutes by
default — then sign in again or call ``/v1/auth/refresh``). ``/redoc`` is not served: one
explorer, fully offline, is enough.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, JSONResponse

from .assets import asset_url

DOCS_URL = "/docs"
BEARER = "bearerAuth"
#: Operations that take no bearer token (they hand one out, or are public).
PUBLIC_PREFIXES = ("/v1/auth/login", "/v1/auth/refresh", "/healthz", "/readyz", "/metrics")


def declare_bearer(schema: dict[str, Any]) -> dict[str, Any]:
    """Make sure the OpenAPI document declares the bearer scheme Authorize needs.

    When the server's own dependencies already declare a security scheme this changes
    nothing; otherwise it adds ``bearerAuth`` (HTTP bearer) and asks it of every
    operation except the public ones.
    """
    components = schema.setdefault("components", {})
    if components.get("securitySchemes"):
        return schema
    components["securitySchemes"] = {
        BEARER: {
            "type": "http",
            "scheme": "bearer",
            "description": "The `access_token` from `POST /v1/auth/login` (15 minutes; "
            "renew with `POST /v1/auth/refresh`).",
        }
    }
    for path, operations in schema.get("paths", {}).items():
        public = path.startswith(PUBLIC_PREFIXES)
        for operation in operations.values():
            if isinstance(operation, dict) and "security" not in operation:
                operation["security"] = [] if public else [{BEARER: []}]
    return schema


def install(app: FastAPI) -> None:
    openapi_url = f"{DOCS_URL}/openapi.json"
    explorer_schema: dict[str, Any] = {}

    @app.get(openapi_url, include_in_schema=False)
    def explorer_openapi() -> JSONResponse:
        """``/openapi.json`` as the explorer needs it (with the bearer scheme)."""
        if not explorer_schema:
            explorer_schema.update(declare_bearer(copy.deepcopy(app.openapi())))
        return JSONResponse(explorer_schema)

    @app.get(DOCS_URL, include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} — API",
            oauth2_redirect_url=f"{DOCS_URL}/oauth2-redirect",
            swagger_js_url=asset_url("vendor/swagger-ui/swagger-ui-bundle.js"),
            swagger_css_url=asset_url("vendor/swagger-ui/swagger-ui.css"),
            swagger_favicon_url=asset_url("vendor/swagger-ui/favicon-32x32.png"),
            swagger_ui_parameters={"persistAuthorization": True, "displayRequestDuration": True},
        )

    @app.get(f"{DOCS_URL}/oauth2-redirect", include_in_schema=False)
    def swagger_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()
