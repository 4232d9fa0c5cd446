"""要件预审: an applicant's drafts against an item's material list, before any case exists (no
case number, no clock), and a clerk's word on each. At intake the pre-review becomes a case.

A draft's bytes are an object in the drafts bucket (the one object-store interface); each upload
of a material is a new version row, so a re-upload after 需修改 keeps the earlier draft and the
clerk's comment on it. A purged pre-review keeps its row without the phone (statistics)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from storage.tables import UTC_TS


class PreReview(SQLModel, table=True):
    __tablename__ = "prereviews"
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=16, unique=True)  # the applicant's 预审码, given once
    item_code: str = Field(max_length=64, index=True)
    phone: str | None = Field(default=None, max_length=20)  # None once purged (anonymised)
    answers: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    status: str = Field(default="open", max_length=12)  # open | reviewed | converted | expired
    case_number: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(sa_type=UTC_TS)
    updated_at: datetime = Field(sa_type=UTC_TS)
    purged_at: datetime | None = Field(default=None, sa_type=UTC_TS)  # drafts' objects deleted


class PreReviewDraft(SQLModel, table=True):
    __tablename__ = "prereview_drafts"
    __table_args__ = (sa.UniqueConstraint("prereview_id", "material_id", "version", name="uq_prereview_draft"),)
    id: int | None = Field(default=None, primary_key=True)
    prereview_id: int = Field(foreign_key="prereviews.id", index=True)
    material_id: str = Field(max_length=64)
    version: int = Field(default=1)  # 1, then one more per re-upload of the material
    file_name: str = Field(max_length=200)
    content_type: str = Field(max_length=40)
    size: int
    bucket: str = Field(max_length=63)
    key: str | None = Field(default=None, max_length=80)  # None once the object is deleted
    uploaded_at: datetime = Field(sa_type=UTC_TS)
    verdict: str | None = Field(default=None, max_length=8)  # ok | redo
    comment: str | None = Field(default=None, max_length=500)
    reviewer: str | None = Field(default=None, max_length=60)
    reviewed_at: datetime | None = Field(default=None, sa_type=UTC_TS)


T_PRE = PreReview.__table__
T_DRAFT = PreReviewDraft.__table__
