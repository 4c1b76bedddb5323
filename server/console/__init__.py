"""The managers' console: server-rendered pages at ``/console/`` (and ``/`` redirects
there), plus the offline API explorer at ``/docs``.

One package, one router convention: ``routes/`` (thin page handlers), ``services/``
(what a page shows, built from the manager API's own service functions and scope rules),
``templates/`` (Jinja2) and ``static/`` (CSS, JS, vendored htmx / ECharts / Swagger UI).
:func:`install_console` mounts it on an app built by :func:`server.app.create_app`.
See ``docs/console.md``.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from .assets import PREFIX, STATIC


def install_console(app: FastAPI) -> None:
    """Mount the console pages, their static files, ``/`` and the offline ``/docs``."""
    from . import docs, errors
    from .routes import ROUTERS

    app.mount(PREFIX, StaticFiles(directory=STATIC), name="console-static")
    for router in ROUTERS:
        app.include_router(router)
    errors.install(app)
    docs.install(app)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/console/", status_code=303)


__all__ = ["install_console"]
