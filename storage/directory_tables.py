"""Tables of the managed alliance directory: its imported versions, counter kinds, and which
clerk a directory entry created (so that any number of imports yield one set of clerks)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from storage.tables import UTC_TS

COUNTER_KINDS = {"staffed": "有人值守窗口", "self_service": "自助服务终端", "guide_only": "仅远程指导窗口"}


class DirectoryVersion(SQLModel, table=True):
    """One imported directory document: numbered, content-hashed, kept whole for show and diff."""

    __tablename__ = "directory_versions"
    version: int = Field(primary_key=True)
    content_hash: str = Field(index=True, max_length=64)
    document: dict[str, Any] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    source: str = Field(default="", max_length=500)
    imported_by: str = Field(default="", max_length=100)
    imported_at: datetime = Field(sa_type=UTC_TS)


class CounterKind(SQLModel, table=True):
    """A counter's kind: staffed (有人值守), self-service (自助), guide only (仅远程指导); a
    self-service booth names the staffed counter that supervises it (takes its cases in, helps by video)."""

    __tablename__ = "counter_kinds"
    counter_id: str = Field(foreign_key="counters.id", primary_key=True, max_length=64)
    kind: str = Field(max_length=16)
    supervised_by: str | None = Field(default=None, max_length=64)


class DirectoryClerk(SQLModel, table=True):
    """The clerk an entry of the directory (name at counter) stands for; the key is unique, so two
    nodes importing the same directory at once cannot create two clerks for it."""

    __tablename__ = "directory_clerks"
    name: str = Field(primary_key=True, max_length=100)
    counter_key: str = Field(primary_key=True, max_length=64)  # the counter id, '' for none
    clerk_id: int = Field(foreign_key="clerks.id", unique=True)


class CounterService(SQLModel, table=True):
    """The ticket machine's rules for a counter (``item_code`` '') or one of its items: the hours
    numbers are given out (取号时间, ``09:00-12:00,13:30-17:00`` in the product's zone, on working
    days), the walk-in numbers per day (每日号源), and the item's group letter (取号分组)."""

    __tablename__ = "counter_service"
    counter_id: str = Field(foreign_key="counters.id", primary_key=True, max_length=64)
    item_code: str = Field(default="", primary_key=True, max_length=64)
    hours: str | None = Field(default=None, max_length=200)
    capacity: int | None = None
    item_group: str | None = Field(default=None, max_length=1)


class CounterGroup(SQLModel, table=True):
    """An item group of a counter's ticket machine (A 企业服务, B 个人事务 …): the visitor picks the
    group, then the item; walk-in numbers run per group letter."""

    __tablename__ = "counter_groups"
    counter_id: str = Field(foreign_key="counters.id", primary_key=True, max_length=64)
    letter: str = Field(primary_key=True, max_length=1)
    name: str = Field(max_length=60)


T_SERVICE = CounterService.__table__
T_GROUP = CounterGroup.__table__
