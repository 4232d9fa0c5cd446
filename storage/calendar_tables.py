"""The year's official schedule of holidays and make-up working days, as published (immutable)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from storage.tables import UTC_TS


class CalendarSchedule(SQLModel, table=True):
    """One year's schedule from the State Council's notice (国务院办公厅关于…部分节假日安排的通知)."""

    __tablename__ = "calendar_schedules"
    year: int = Field(primary_key=True)
    notice: str  # the notice's title and 文号
    holidays: list[str] = Field(sa_column=sa.Column(sa.JSON, nullable=False))  # ISO dates off work
    workdays: list[str] = Field(sa_column=sa.Column(sa.JSON, nullable=False))  # make-up working days (调休)
    content_hash: str = Field(max_length=64)
    source: str
    published_at: datetime = Field(sa_type=UTC_TS)
    published_by: str = Field(max_length=64)


T_SCHEDULE = CalendarSchedule.__table__
