"""The per-case budget of wrong query codes (the applicant's progress query and withdrawal).

Kept in the database, not in a server process: every worker and every restart sees the same
count and the same lockout, so neither more workers nor a restart gives a guesser more tries.
One row per case that ever had a wrong code; unknown case numbers get no row.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from storage.tables import UTC_TS


class QueryGuard(SQLModel, table=True):
    __tablename__ = "query_guards"
    case_id: int = Field(foreign_key="cases.id", primary_key=True)
    window_started_at: datetime | None = Field(default=None, sa_type=UTC_TS)  # first failure of the window
    failures: int = 0  # wrong codes in the window
    locked_until: datetime | None = Field(default=None, sa_type=UTC_TS)
    lockouts: int = 0  # how many times the case was locked (each one notified once)


T_QUERY_GUARD = QueryGuard.__table__
