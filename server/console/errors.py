"""Errors on console pages answer HTML, not the API's JSON envelope.

The app's handlers (``server.app``) stay in charge of every other path: for a
``/console/…`` request the wrapped handler renders the error page instead (same
status), and :class:`~.session.SignInRequired` becomes a redirect to the sign-in page
(``HX-Redirect`` for htmx requests, which would otherwise swap the page into a panel).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from sync_protocol import ErrorCode, ProtocolError

from ..errors import http_status
from .i18n import negotiate, translator
from .session import CsrfRejected, SignInRequired
from .templating import render

Handler = Callable[[Request, Any], Awaitable[Response] | Response]


def is_console(request: Request) -> bool:
    path = request.url.path
    return path == "/console" or path.startswith("/console/")


def sign_in_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    url = f"/console/login?next={quote(target, safe='')}"
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def error_page(request: Request, status: int, message: str) -> Response:
    t = translator(negotiate(request))
    if status == 404:
        message = t("error.not_found")
    return render(request, "error.html", status=status, t=t, status_code=status, message=message)


def _protocol_page(request: Request, exc: ProtocolError) -> Response:
    t = translator(negotiate(request))
    if isinstance(exc, CsrfRejected):
        return error_page(request, 403, t("error.csrf"))
    status = http_status(exc)
    if exc.code is ErrorCode.FORBIDDEN:
        return error_page(request, status, f"{t('error.forbidden')} ({exc.message})")
    return error_page(request, status, exc.message)


def _wrap(app: FastAPI, exc_class: type[Exception], page: Callable[..., Response]) -> None:
    original = app.exception_handlers.get(exc_class)

    async def handler(request: Request, exc: Any) -> Response:
        if is_console(request) or original is None:
            return page(request, exc)
        result = original(request, exc)
        return await result if isinstance(result, Awaitable) else result

    app.add_exception_handler(exc_class, handler)


def install(app: FastAPI) -> None:
    async def signin(request: Request, _exc: Exception) -> Response:
        return sign_in_redirect(request)

    app.add_exception_handler(SignInRequired, signin)
    _wrap(app, ProtocolError, _protocol_page)
    _wrap(
        app,
        StarletteHTTPException,
        lambda request, exc: error_page(request, exc.status_code, str(exc.detail)),
    )
    _wrap(
        app,
        RequestValidationError,
        lambda request, exc: error_page(request, 422, str(exc.errors()[:3])),
    )
