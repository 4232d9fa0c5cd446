"""Written notices (文书) issued for cases: one row per notice, numbered when its transition commits.

The number (文号) and the facts the notice states are written in the transition's own transaction;
the PDF is drawn later by a job and stored as evidence, and its digest is set here, so a reprint
serves the same stored bytes under the same number.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from storage.tables import UTC_TS


class CaseDocument(SQLModel, table=True):
    """One notice of a case (收件凭证, 受理通知书, …), at most one per kind and issuing event."""

    __tablename__ = "case_documents"
    __table_args__ = (sa.UniqueConstraint("case_id", "kind", "event_seq"),)
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id", index=True)
    kind: str = Field(max_length=32)
    number: str = Field(unique=True, max_length=64)  # 文号
    title: str
    unit_id: str = Field(foreign_key="units.id", max_length=32)
    counter_id: str | None = Field(default=None, max_length=64)
    event_seq: int  # history seq of the event that issued it
    issued_at: datetime = Field(sa_type=UTC_TS)
    issued_by: int | None = None  # clerk id
    issued_by_name: str = ""
    data: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False))
    evidence_id: int | None = Field(default=None, foreign_key="evidence.id")
    sha256: str | None = Field(default=None, max_length=64, index=True)  # /verify finds a PDF by it


# Table handle for Core statements, one per table.
T_DOC = CaseDocument.__table__
