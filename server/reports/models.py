"""The reporting table (``report_facts``) and its cursor (``report_state``); see
:mod:`.facts` for what they hold and how they stay true.

Declared on :class:`server.models.Base`; the migration is
``server/migrations/versions/*_report_facts.py``.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Double, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..models import Base


class ReportFact(Base):
    __tablename__ = "report_facts"
    __table_args__ = (Index("ix_report_facts_collection_owner", "collection", "owner_id"),)

    collection: Mapped[str] = mapped_column(String(64), primary_key=True)
    record_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner_id: Mapped[str | None] = mapped_column(String(64))
    customer_id: Mapped[str | None] = mapped_column(String(64))
    created_at_ms: Mapped[int | None] = mapped_column(BigInteger)
    #: The record version these facts were read from.
    version: Mapped[int] = mapped_column(BigInteger)
    t1: Mapped[str | None] = mapped_column(Text)
    t2: Mapped[str | None] = mapped_column(Text)
    t3: Mapped[str | None] = mapped_column(Text)
    t4: Mapped[str | None] = mapped_column(Text)
    t5: Mapped[str | None] = mapped_column(Text)
    t6: Mapped[str | None] = mapped_column(Text)
    n1: Mapped[float | None] = mapped_column(Double)
    n2: Mapped[float | None] = mapped_column(Double)
    n3: Mapped[float | None] = mapped_column(Double)
    n4: Mapped[float | None] = mapped_column(Double)
    e1: Mapped[int | None] = mapped_column(BigInteger)
    e2: Mapped[int | None] = mapped_column(BigInteger)
    e3: Mapped[int | None] = mapped_column(BigInteger)


class ReportState(Base):
    __tablename__ = "report_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: Every record change up to this version is in ``report_facts``.
    cursor: Mapped[int] = mapped_column(BigInteger, default=0)
    #: The layout the facts were written with (:data:`.facts.LAYOUT_ID`).
    layout: Mapped[str | None] = mapped_column(String(32))
