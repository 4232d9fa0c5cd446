"""Tables of the 办件 data exchange: where each case stands in the change order, and who exported what.

``case_changes`` holds one row per case: the position of the case's newest committed change in an
order that readers can page through without ever skipping one (``engine.exchange`` says why this
is not ``cases.updated_at``). Triggers on ``cases`` keep it (migration 0012), so every writer of a
case row — transitions, the deadline sweep, 延期, a migration — moves the case forward without
knowing about the exchange, and the hot ``cases`` table gets no new column or index.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from storage.tables import UTC_TS


class CaseChange(SQLModel, table=True):
    """The case's place in the change order. PostgreSQL: the id of the transaction that last wrote
    the case row (``txid_current()``, 64 bits, never wraps); SQLite: a counter, one more than the
    largest so far, taken under SQLite's single writer lock."""

    __tablename__ = "case_changes"
    __table_args__ = (sa.Index("ix_case_changes_seq", "seq", "case_id"),)
    case_id: int = Field(sa_column=sa.Column(sa.Integer, sa.ForeignKey("cases.id"), primary_key=True,
                                             autoincrement=False))
    seq: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))


class ExchangeExport(SQLModel, table=True):
    """One export of cases to another platform: who, when, through which channel, which cases,
    and whether the applicants' personal data went with them (个人信息保护法: a record of every
    provision of personal information to another processor)."""

    __tablename__ = "exchange_exports"
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_type=UTC_TS, index=True)
    clerk_id: int | None = Field(default=None, foreign_key="clerks.id")
    actor_name: str = Field(max_length=200)
    channel: str = Field(max_length=8)  # api | cli
    format: str = Field(max_length=8)  # json | csv
    after: str | None = Field(default=None, max_length=64)
    next_cursor: str = Field(max_length=64)
    count: int
    personal: bool  # the applicants' names, id numbers, phones and addresses were included
    numbers: list[str] = Field(default_factory=list, sa_column=sa.Column(sa.JSON, nullable=False))
    scope: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(sa.JSON))  # a supervisor's regions


# The triggers that keep ``case_changes`` (installed by migration 0012, per dialect).
PG_TRIGGER = """
CREATE OR REPLACE FUNCTION tongban_case_changed() RETURNS trigger AS $$
BEGIN
    INSERT INTO case_changes (case_id, seq) VALUES (NEW.id, txid_current())
    ON CONFLICT (case_id) DO UPDATE SET seq = EXCLUDED.seq
    WHERE case_changes.seq IS DISTINCT FROM EXCLUDED.seq;  -- written twice in one transaction: one row version
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER cases_changed AFTER INSERT OR UPDATE ON cases
    FOR EACH ROW EXECUTE FUNCTION tongban_case_changed();
"""
PG_DROP = "DROP TRIGGER IF EXISTS cases_changed ON cases; DROP FUNCTION IF EXISTS tongban_case_changed();"
_SQLITE_BODY = ("BEGIN INSERT OR REPLACE INTO case_changes (case_id, seq) VALUES "
                "(NEW.id, (SELECT COALESCE(MAX(seq), 0) + 1 FROM case_changes)); END")
SQLITE_TRIGGERS = (
    f"CREATE TRIGGER cases_changed_insert AFTER INSERT ON cases {_SQLITE_BODY}",
    f"CREATE TRIGGER cases_changed_update AFTER UPDATE ON cases {_SQLITE_BODY}",
)
SQLITE_DROP = ("DROP TRIGGER IF EXISTS cases_changed_insert", "DROP TRIGGER IF EXISTS cases_changed_update")

# Table handles for Core statements, one per table.
T_CHANGE = CaseChange.__table__
T_EXPORT = ExchangeExport.__table__
