"""Tables for scanned pages (扫描件) and evidence (证据: certificates, recordings).

A row is committed only after its object is stored (object first, row after), so a row never
points at a missing object; objects no row refers to are swept later.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from storage.tables import UTC_TS


class CasePage(SQLModel, table=True):
    """One scanned page in a material slot of a case. Withdrawn pages stay (history) but hide."""

    __tablename__ = "case_pages"
    __table_args__ = (sa.Index("ix_case_pages_slot", "case_id", "material_id", "page_no"),)
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id")
    material_id: str = Field(max_length=64)
    page_no: int  # 1-based among the slot's pages that are not withdrawn
    sha256: str = Field(max_length=64, index=True)
    size: int
    media_type: str = Field(max_length=64)
    bucket: str = Field(max_length=63)
    key: str = Field(max_length=80)
    original_name: str | None = Field(default=None, max_length=255)  # display only, never a path
    width: int | None = None
    height: int | None = None
    pages: int | None = None  # PDF page count
    uploaded_by: int | None = None  # clerk id
    uploaded_by_name: str
    counter_id: str | None = Field(default=None, max_length=64)
    uploaded_at: datetime = Field(sa_type=UTC_TS)
    withdrawn_at: datetime | None = Field(default=None, sa_type=UTC_TS)
    withdrawn_by: int | None = None
    thumbnail_key: str | None = Field(default=None, max_length=80)


class Evidence(SQLModel, table=True):
    """A retained object of a case: certificate, recording, … (versioned bucket, object lock)."""

    __tablename__ = "evidence"
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id", index=True)
    kind: str = Field(max_length=32)  # certificate | recording | …
    sha256: str = Field(max_length=64, index=True)
    size: int = Field(sa_type=sa.BigInteger)  # recordings exceed 2 GiB
    media_type: str = Field(max_length=128)
    bucket: str = Field(max_length=63)
    key: str = Field(max_length=80)
    version_id: str | None = Field(default=None, max_length=128)
    retain_until: datetime | None = Field(default=None, sa_type=UTC_TS)
    stored_by: int | None = None
    stored_by_name: str
    counter_id: str | None = Field(default=None, max_length=64)
    stored_at: datetime = Field(sa_type=UTC_TS)
    meta: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(sa.JSON))


# Table handles for Core statements (prepared statements and bulk reads), one per table.
T_EVID = Evidence.__table__
T_PAGE = CasePage.__table__
