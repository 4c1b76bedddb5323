"""The console's page routers (thin: parse the form, call a service, render)."""

from __future__ import annotations

from fastapi import APIRouter

from . import audit, conflicts, customers, dashboard, data, devices, people, reassign, sales, signin

ROUTERS: tuple[APIRouter, ...] = (
    signin.router,
    dashboard.router,
    customers.router,
    sales.router,
    reassign.router,
    conflicts.router,
    devices.router,
    people.router,
    audit.router,
    data.router,
)
