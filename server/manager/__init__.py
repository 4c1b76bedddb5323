"""The manager web API (``/v1/manager/…``, ``/v1/admin/teams``): team data through the
sync engine's write path, reports, reassignment, the conflicts inbox, users, teams,
devices, the audit log, CSV import/export — and backup/restore (:mod:`.backup`).

``install_manager(app)`` mounts every router on an app built by
:func:`server.app.create_app`. See ``docs/manager-api.md``.
"""

from __future__ import annotations

from fastapi import FastAPI


def install_manager(app: FastAPI) -> None:
    """Mount the manager routers (they reach the per-app context through the request)."""
    from ..reports import routes as report_routes
    from . import (
        conflicts,
        devices,
        entities,
        leads,
        merge,
        orders,
        people,
        reassignment,
        reminders,
        service_desk,
        transfer,
    )

    for router in (
        entities.router,
        leads.router,
        merge.router,
        orders.router,
        reminders.router,
        service_desk.router,
        report_routes.router,
        reassignment.router,
        conflicts.router,
        people.router,
        people.admin_router,
        devices.router,
        transfer.router,
    ):
        app.include_router(router)


__all__ = ["install_manager"]
