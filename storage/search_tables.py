"""The case search index: one row per case, its searchable terms (number, applicant name, ID
number or credit code, phone) in one text. PostgreSQL indexes it with pg_trgm (GIN), SQLite with
an FTS5 trigram table kept in step by triggers (migration 0020_case_search); the engine writes the
row in the same transaction as the intake."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


class CaseSearch(SQLModel, table=True):
    __tablename__ = "case_search"
    case_id: int = Field(primary_key=True, foreign_key="cases.id")
    terms: str = Field(sa_column=sa.Column(sa.Text, nullable=False))


T_SEARCH = CaseSearch.__table__


def terms_of(number: str, applicant: dict) -> str:
    """What a case is found by, lower-cased, one field a line: number, name, ID number or credit
    code, phone (as written and digits only)."""
    phone = str(applicant.get("phone") or "")
    parts = [number, applicant.get("name") or "", applicant.get("id_number") or "", phone,
             "".join(ch for ch in phone if ch.isdigit())]
    return "\n".join(str(p).strip().lower() for p in parts)
