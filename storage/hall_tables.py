"""At the counter and after it: queue tickets (取号, 签到, 叫号, 复诊号), ratings (好差评) and the
rectification of every 差评 (整改, 回访, 申诉复核).

A ticket's number is unique per counter, day and group letter; the number is taken by inserting
the next one, so two printers racing for the same number lose the insert, not the ticket.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from storage.tables import UTC_TS


class Ticket(SQLModel, table=True):
    __tablename__ = "tickets"
    __table_args__ = (sa.UniqueConstraint("counter_id", "day", "number", name="uq_ticket_number"),)
    id: int | None = Field(default=None, primary_key=True)
    counter_id: str = Field(foreign_key="counters.id", max_length=64)
    day: date
    number: str = Field(max_length=8)  # "A001"; "P001" for a booking checked in; "F001" 复诊号
    kind: str = Field(max_length=12)  # walk_in | appointment | returning
    item_group: str = Field(max_length=1)
    item_code: str | None = Field(default=None, max_length=64)
    priority: int = 0  # higher is called first
    appointment_id: int | None = Field(default=None, foreign_key="appointments.id")
    case_id: int | None = Field(default=None, foreign_key="cases.id")
    clerk_id: int | None = Field(default=None, foreign_key="clerks.id")  # 复诊号: only this clerk calls it
    status: str = Field(default="waiting", max_length=12)  # waiting | called | done | skipped
    created_at: datetime = Field(sa_type=UTC_TS)
    called_at: datetime | None = Field(default=None, sa_type=UTC_TS)
    called_by: int | None = Field(default=None, foreign_key="clerks.id")
    window: str | None = Field(default=None, max_length=64)  # the window's name as the hall reads it


class Evaluation(SQLModel, table=True):
    __tablename__ = "evaluations"
    __table_args__ = (sa.UniqueConstraint("subject", "channel", name="uq_evaluation_subject"),)
    id: int | None = Field(default=None, primary_key=True)
    subject: str = Field(max_length=48)  # "case:<id>" or "ticket:<id>": one rating per subject and channel
    channel: str = Field(max_length=8)  # case (一事一评) | window (一次一评)
    level: int  # 5 非常满意 … 1 非常不满意
    reasons: list[str] = Field(default_factory=list, sa_column=sa.Column(sa.JSON, nullable=False))
    text: str = Field(default="", sa_type=sa.Text)
    case_id: int | None = Field(default=None, foreign_key="cases.id", index=True)
    ticket_id: int | None = Field(default=None, foreign_key="tickets.id")
    item_code: str | None = Field(default=None, max_length=64)
    counter_id: str = Field(foreign_key="counters.id", max_length=64, index=True)
    clerk_id: int | None = Field(default=None, foreign_key="clerks.id")
    created_at: datetime = Field(sa_type=UTC_TS)


class Rectification(SQLModel, table=True):
    """整改: one per 差评, with its 回访 and an appeal (申诉复核) on the same row."""

    __tablename__ = "rectifications"
    id: int | None = Field(default=None, primary_key=True)
    evaluation_id: int = Field(foreign_key="evaluations.id", unique=True)
    counter_id: str = Field(foreign_key="counters.id", max_length=64, index=True)
    status: str = Field(default="open", max_length=12)  # open | done | appealed | annulled
    due: date
    created_at: datetime = Field(sa_type=UTC_TS)
    action: str | None = Field(default=None, sa_type=sa.Text)  # what was done
    done_at: datetime | None = Field(default=None, sa_type=UTC_TS)
    done_by: int | None = Field(default=None, foreign_key="clerks.id")
    visit_contacted: bool | None = None  # 回访
    visit_note: str | None = Field(default=None, sa_type=sa.Text)
    visit_verdict: str | None = Field(default=None, max_length=12)  # satisfied | unsatisfied
    visit_at: datetime | None = Field(default=None, sa_type=UTC_TS)
    appeal_reason: str | None = Field(default=None, sa_type=sa.Text)
    appeal_at: datetime | None = Field(default=None, sa_type=UTC_TS)
    appeal_decision: str | None = Field(default=None, max_length=12)  # upheld | rejected
    appeal_note: str | None = Field(default=None, sa_type=sa.Text)
    appeal_decided_by: int | None = Field(default=None, foreign_key="clerks.id")
    appeal_decided_at: datetime | None = Field(default=None, sa_type=UTC_TS)


T_TICKET = Ticket.__table__
T_EVAL = Evaluation.__table__
T_RECT = Rectification.__table__
