"""Every screen of the app, in the order the ScreenManager holds them."""

from __future__ import annotations

from .account import FirstRunScreen, InitialSyncScreen, UnlockScreen
from .base import BaseScreen
from .customers import CustomerDetailScreen, CustomerFormScreen, CustomersScreen
from .inbox import ConflictsScreen, RejectedScreen, SettingsScreen
from .visit import LogVisitScreen, VisitScreen
from .work import (
    DealScreen,
    PipelineScreen,
    TicketDetailScreen,
    TicketFormScreen,
    TicketsScreen,
    TodayScreen,
)

ALL_SCREENS: tuple[type[BaseScreen], ...] = (
    FirstRunScreen,
    UnlockScreen,
    InitialSyncScreen,
    TodayScreen,
    CustomersScreen,
    CustomerDetailScreen,
    CustomerFormScreen,
    LogVisitScreen,
    VisitScreen,
    PipelineScreen,
    DealScreen,
    TicketsScreen,
    TicketDetailScreen,
    TicketFormScreen,
    ConflictsScreen,
    RejectedScreen,
    SettingsScreen,
)

__all__ = ["ALL_SCREENS", "BaseScreen"]
