"""The console's page routers (thin: parse the form, call a service, render)."""

from __future__ import annotations

from fastapi import APIRouter

from . import customers, dashboard, signin

ROUTERS: tuple[APIRouter, ...] = (signin.router, dashboard.router, customers.router)
