"""Tables of the supervisor dashboard: which regions each supervisor watches."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from storage.tables import Case, CaseHolder, OutboxJob


class SupervisorRegion(SQLModel, table=True):
    """A supervisor (督查) sees the counters and cases of these regions and no others."""

    __tablename__ = "supervisor_regions"
    clerk_id: int = Field(foreign_key="clerks.id", primary_key=True)
    region_code: str = Field(foreign_key="regions.code", primary_key=True, max_length=12)


def _indexes() -> None:
    """Indexes the dashboard, queue and case pages need on the engine's tables (migration 0005)."""
    cases, open_ = Case.__table__, sa.text("finished_at IS NULL")
    sa.Index("ix_cases_intake_created", cases.c.intake_counter_id, cases.c.created_at,
             postgresql_include=["item_code"])
    sa.Index("ix_cases_intake_finished", cases.c.intake_counter_id, cases.c.finished_at,
             postgresql_include=["item_code"])
    sa.Index("ix_cases_open_due", cases.c.promised_due, postgresql_where=open_, sqlite_where=open_)
    sa.Index("ix_cases_open_updated", cases.c.updated_at, postgresql_where=open_, sqlite_where=open_)
    sa.Index("ix_cases_open_cover", cases.c.id, postgresql_where=open_, sqlite_where=open_,
             postgresql_include=["item_code", "state", "promised_due", "updated_at", "assignees"])
    sa.Index("ix_outbox_job_created", OutboxJob.__table__.c.job, OutboxJob.__table__.c.created_at)
    sa.Index("ix_case_holders_counter_case", CaseHolder.__table__.c.counter_id,
             CaseHolder.__table__.c.case_id)


_indexes()


# Table handles for Core statements (prepared statements and bulk reads), one per table.
T_SUP = SupervisorRegion.__table__
