"""分时服务: bookable time slots at a counter for an item, and the bookings made in them.

A slot row exists once somebody booked it; its ``booked`` count is raised by one guarded UPDATE
(``booked < capacity``), so the last place goes to exactly one of any number of concurrent
bookings, on SQLite and PostgreSQL alike, with no lock held across the request.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from storage.tables import UTC_TS


class AppointmentSlot(SQLModel, table=True):
    __tablename__ = "appointment_slots"
    __table_args__ = (sa.UniqueConstraint("counter_id", "item_code", "day", "start", name="uq_appointment_slot"),)
    id: int | None = Field(default=None, primary_key=True)
    counter_id: str = Field(foreign_key="counters.id", max_length=64)
    item_code: str = Field(max_length=64)
    day: date
    start: str = Field(max_length=5)  # "09:30", local time of the counter's zone
    capacity: int
    booked: int = 0


class Appointment(SQLModel, table=True):
    __tablename__ = "appointments"
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=16, unique=True)  # the applicant's confirmation code (预约码)
    slot_id: int = Field(foreign_key="appointment_slots.id", index=True)
    name: str = Field(max_length=60)
    phone: str = Field(max_length=20, index=True)
    status: str = Field(default="booked", max_length=12)  # booked | cancelled | checked_in | no_show
    created_at: datetime = Field(sa_type=UTC_TS)
    cancelled_at: datetime | None = Field(default=None, sa_type=UTC_TS)
    checked_in_at: datetime | None = Field(default=None, sa_type=UTC_TS)
    no_show_at: datetime | None = Field(default=None, sa_type=UTC_TS)


T_SLOT = AppointmentSlot.__table__
T_APPT = Appointment.__table__
