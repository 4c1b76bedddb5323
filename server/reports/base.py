"""What every report shares: the caller's read (:class:`ReportContext`), the names of the
people in scope, labels in the caller's language, and calendar periods."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal

from sqlalchemy import Executable, Subquery, select
from sqlalchemy.orm import Session

from sync_protocol import CRM_SCHEMA, FieldError, ValidationFailed
from sync_protocol.labels import Language, choice_label

from ..accounts import Principal
from ..deps import AuthContext
from ..models import User
from . import sql

Period = Literal["all", "month", "quarter", "year"]


@dataclass(slots=True)
class ReportContext:
    """One report's read: the session, the caller, the database dialect, the language."""

    session: Session
    principal: Principal
    lang: Language = "en"
    dialect: str = ""

    def __post_init__(self) -> None:
        self.dialect = sql.prepare(self.session)

    def view(self, collection: str, columns: sql.Columns, name: str) -> Subquery:
        return sql.view(collection, columns, self.principal, name=name)

    def rows(self, stmt: Executable) -> Sequence[Any]:
        """Result rows (SQLAlchemy ``Row`` objects: by index or attribute)."""
        return self.session.execute(stmt).all()

    def choice(self, collection: str, field: str, code: str | None) -> str:
        return choice_label(collection, field, code, self.lang)

    def field_label(self, collection: str, field: str) -> str:
        spec = CRM_SCHEMA[collection].fields[field]
        return (spec.label_zh if self.lang == "zh" else spec.label) or field

    def people(self, *, reps_only: bool) -> dict[str, str]:
        return people_in_scope(self.session, self.principal, reps_only=reps_only)


def people_in_scope(session: Session, principal: Principal, *, reps_only: bool) -> dict[str, str]:
    """User id → display name for the users in the caller's scope (reps only, or all)."""
    stmt = select(User.id, User.display_name, User.role)
    if principal.role == "manager":
        stmt = stmt.where(User.id.in_(sorted(principal.team_member_ids | {principal.user_id})))
    elif principal.role != "admin":
        stmt = stmt.where(User.id == principal.user_id)
    return {
        uid: name for uid, name, role in session.execute(stmt) if not reps_only or role == "rep"
    }


def scope_users(session: Session, auth: AuthContext, *, reps_only: bool) -> dict[str, str]:
    """:func:`people_in_scope` for an authenticated caller."""
    return people_in_scope(session, auth.principal, reps_only=reps_only)


@dataclass(frozen=True, slots=True)
class Window:
    """A labelled calendar window ``[start, end]`` (days, both included)."""

    label: str
    start: date
    end: date


def _month_end(day: date) -> date:
    following = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return following - timedelta(days=1)


#: Periods one report cuts its window into at most (50 years of months).
MAX_PERIODS = 600


def periods(start: date, end: date, period: Period) -> list[Window]:
    """``[start, end]`` cut into calendar months, quarters or years (clipped to the
    window), or the whole window for ``all``."""
    if period == "all":
        return [Window(f"{start.isoformat()}..{end.isoformat()}", start, end)]
    per_year = {"month": 12, "quarter": 4}.get(period, 1)
    if (end.year - start.year + 1) * per_year > MAX_PERIODS:
        # 0001-01-01..9999-12-31 by month is 120,000 windows per rep: one request would
        # hold a server thread and a gigabyte of memory (found by schemathesis).
        raise ValidationFailed(
            f"at most {MAX_PERIODS} periods per report; choose a shorter window or a longer period",
            errors=[FieldError(field="period", code="too_many", message="too many periods")],
        )
    windows: list[Window] = []
    cursor = start
    while cursor <= end:
        if period == "month":
            label, last = f"{cursor.year}-{cursor.month:02d}", _month_end(cursor)
        elif period == "quarter":
            q = (cursor.month - 1) // 3
            label, last = f"{cursor.year}-Q{q + 1}", _month_end(date(cursor.year, q * 3 + 3, 1))
        else:
            label, last = str(cursor.year), date(cursor.year, 12, 31)
        windows.append(Window(label, cursor, min(last, end)))
        cursor = last + timedelta(days=1)
    return windows
