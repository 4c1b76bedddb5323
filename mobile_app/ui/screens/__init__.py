"""Every screen of the app, in the order the ScreenManager holds them."""

from __future__ import annotations

from .account import FirstRunScreen, InitialSyncScreen, ReloginScreen, UnlockScreen
from .base import BaseScreen
from .customers import CustomerDetailScreen, CustomerFormScreen, CustomersScreen
from .inbox import ConflictsScreen, RejectedScreen, SettingsScreen
from .leads import LeadConvertScreen, LeadDetailScreen, LeadsScreen
from .more import (
    ArticleScreen,
    ContractDetailScreen,
    ContractsScreen,
    KnowledgeScreen,
    MoreScreen,
    ProductsScreen,
    TargetsScreen,
)
from .orders import OrderScreen, OrdersScreen
from .records import (
    ContactFormScreen,
    DealFormScreen,
    LeadFormScreen,
    LogActivityScreen,
    TaskFormScreen,
    TasksScreen,
)
from .safety import SignOutScreen
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
    ContactFormScreen,
    LogVisitScreen,
    VisitScreen,
    LogActivityScreen,
    PipelineScreen,
    DealScreen,
    DealFormScreen,
    TasksScreen,
    TaskFormScreen,
    MoreScreen,
    LeadsScreen,
    LeadDetailScreen,
    LeadFormScreen,
    LeadConvertScreen,
    OrdersScreen,
    OrderScreen,
    ProductsScreen,
    ContractsScreen,
    ContractDetailScreen,
    KnowledgeScreen,
    ArticleScreen,
    TargetsScreen,
    TicketsScreen,
    TicketDetailScreen,
    TicketFormScreen,
    ConflictsScreen,
    RejectedScreen,
    SettingsScreen,
    SignOutScreen,
    ReloginScreen,
)

__all__ = ["ALL_SCREENS", "BaseScreen"]
