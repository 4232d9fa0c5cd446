"""SQLModel tables: the alliance directory, clerks, item versions, cases and their records."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


class UtcDateTime(sa.TypeDecorator[datetime]):
    """Times are kept in UTC. PostgreSQL keeps the zone; SQLite keeps only the wall time and
    hands it back naive, so the zone is put back on the way out (and an aware time in another
    zone is converted on the way in, not stored as its wall time)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return value.astimezone(UTC) if value is not None and value.tzinfo is not None else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value

    # On SQLite, both directions in one step each: the case row carries several times and is read
    # and written on every transition. Same text as SQLAlchemy's SQLite DATETIME, parsed by
    # fromisoformat rather than a regular expression.
    def bind_processor(self, dialect: sa.Dialect) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def to_text(value: datetime | None) -> str | None:
            if value is None:
                return None
            if value.tzinfo is not None:
                value = value.astimezone(UTC).replace(tzinfo=None)
            return value.isoformat(" ", "microseconds")

        return to_text

    def result_processor(self, dialect: sa.Dialect, coltype: Any) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)

        def from_text(value: str | None) -> datetime | None:
            return None if value is None else datetime.fromisoformat(value).replace(tzinfo=UTC)

        return from_text


UTC_TS = UtcDateTime()


def _json(**kw: Any) -> Any:
    return Field(default=None, sa_column=sa.Column(sa.JSON, **kw))


class Region(SQLModel, table=True):
    __tablename__ = "regions"
    code: str = Field(primary_key=True, max_length=12)  # 行政区划代码
    name: str


class Unit(SQLModel, table=True):
    """An alliance member unit (成员单位): the authority whose name, code and seal a notice carries."""

    __tablename__ = "units"
    id: str = Field(primary_key=True, max_length=32)
    name: str
    code: str = Field(unique=True, max_length=18)  # 统一社会信用代码 (GB 32100-2015)
    region_code: str = Field(foreign_key="regions.code", index=True)
    doc_abbr: str = Field(max_length=16)  # the 文号's abbreviation, e.g. 青西审
    doc_format: str = Field(max_length=64)  # e.g. {abbr}{word}〔{year}〕{seq:05d}号
    doc_words: dict[str, str] = Field(default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False))


class Counter(SQLModel, table=True):
    """A service counter (窗口) of an alliance member unit."""

    __tablename__ = "counters"
    id: str = Field(primary_key=True, max_length=64)
    name: str
    unit: str = ""  # 所属单位's name, kept beside unit_id for the readers that only show it
    unit_id: str | None = Field(default=None, foreign_key="units.id", index=True, max_length=32)
    region_code: str = Field(foreign_key="regions.code", index=True)


class CounterItem(SQLModel, table=True):
    """Which counter plays which role for which item: intake, competent, guide, or a department."""

    __tablename__ = "counter_items"
    counter_id: str = Field(foreign_key="counters.id", primary_key=True)
    item_code: str = Field(primary_key=True, max_length=64)
    role: str = Field(primary_key=True, max_length=32)


class Clerk(SQLModel, table=True):
    __tablename__ = "clerks"
    id: int | None = Field(default=None, primary_key=True)
    name: str
    counter_id: str | None = Field(default=None, foreign_key="counters.id", index=True)
    roles: str  # comma-separated actor roles
    active: bool = True


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_tokens"
    id: int | None = Field(default=None, primary_key=True)
    clerk_id: int = Field(foreign_key="clerks.id", index=True)
    token_hash: str = Field(unique=True, max_length=64)
    created_at: datetime = Field(sa_type=UTC_TS)
    expires_at: datetime = Field(sa_type=UTC_TS)
    revoked_at: datetime | None = Field(default=None, sa_type=UTC_TS)


class ItemVersion(SQLModel, table=True):
    __tablename__ = "item_versions"
    __table_args__ = (sa.UniqueConstraint("code", "version"),)
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(index=True, max_length=64)
    version: int
    name: str
    content_hash: str = Field(max_length=64)
    source: str = Field(sa_type=sa.Text)
    published_at: datetime = Field(sa_type=UTC_TS)
    published_by: str = ""


class Case(SQLModel, table=True):
    """A case (办件). ``version`` is bumped by every event: optimistic concurrency."""

    __tablename__ = "cases"
    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(unique=True, max_length=32)
    item_version_id: int = Field(foreign_key="item_versions.id", index=True)
    item_code: str = Field(index=True, max_length=64)
    mode: str
    state: str = Field(max_length=64)  # no index: see migration 0007
    branches: dict[str, str] | None = _json()
    status_code: int  # exchange status (1 已接件 … 15 撤销)
    intake_counter_id: str = Field(foreign_key="counters.id")
    competent_counter_id: str = Field(foreign_key="counters.id")
    parties: dict[str, str] = _json(nullable=False)  # counter role → counter id
    assignees: dict[str, int] = _json(nullable=False)  # counter id → clerk id (一事一人)
    applicant: dict[str, Any] = _json(nullable=False)
    query_code_hash: str = Field(max_length=64)
    commitment: dict[str, Any] | None = _json()
    created_at: datetime = Field(sa_type=UTC_TS)
    updated_at: datetime = Field(sa_type=UTC_TS)
    promised_due: date | None = None
    legal_due: date | None = None
    finished_at: datetime | None = Field(default=None, sa_type=UTC_TS)
    version: int = 1
    last_hash: str | None = Field(default=None, max_length=64)  # newest history event's hash
    # Deadline clock (engine.deadlines, migration 0003): paused since, working days paused so far,
    # and the sweep's marker 正常 / 预警 / 逾期.
    clock_paused_at: datetime | None = Field(default=None, sa_type=UTC_TS)
    paused_days: int | None = None
    deadline_status: str | None = Field(default=None, max_length=8)
    # The law's periods (migration 0009): the decision period runs from 受理 (accepted_at); before
    # it, 补正 must be notified within five working days of 收件; the certificate is due ten working
    # days after the decision. A due date computed without the year's official schedule is
    # provisional until it is published. 延期 adds extended_days to the legal period, once.
    accepted_at: datetime | None = Field(default=None, sa_type=UTC_TS)
    supplement_notice_due: date | None = None
    certificate_due: date | None = None
    deadline_provisional: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    extended_days: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # 一事一人: the intake clerk who accompanies the applicant (收件, 补正, 送达, 撤回).
    companion_id: int | None = Field(default=None, foreign_key="clerks.id")


class CaseHolder(SQLModel, table=True):
    """Counters currently holding a case (several during parallel review): the queues."""

    __tablename__ = "case_holders"
    case_id: int = Field(foreign_key="cases.id", primary_key=True)
    counter_id: str = Field(foreign_key="counters.id", primary_key=True)


class CaseMaterial(SQLModel, table=True):
    __tablename__ = "case_materials"
    case_id: int = Field(foreign_key="cases.id", primary_key=True)
    material_id: str = Field(primary_key=True, max_length=64)
    status: str = "missing"  # missing | received | deferred
    promise: str | None = None  # 容缺受理: the applicant's written promise
    deferred_due: date | None = None
    updated_at: datetime = Field(sa_type=UTC_TS)


class HistoryEvent(SQLModel, table=True):
    """Append-only. ``seq`` equals the case version the event produced."""

    __tablename__ = "history"
    __table_args__ = (sa.UniqueConstraint("case_id", "seq"),)
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id")
    seq: int
    at: datetime = Field(sa_type=UTC_TS)
    kind: str = "transition"  # transition | intake | material | assign | …
    actor_id: int | None = None
    actor_name: str
    counter_id: str | None = None
    trigger: str | None = None
    from_state: str | None = None
    to_state: str | None = None
    comment: str | None = None
    data: dict[str, Any] | None = _json()
    prev_hash: str | None = Field(default=None, max_length=64)
    hash: str = Field(default="", max_length=64)


class OutboxJob(SQLModel, table=True):
    """Work a transition started, drained by Prefect flows per region."""

    __tablename__ = "outbox"
    id: str = Field(primary_key=True, max_length=36)
    case_id: int = Field(foreign_key="cases.id", index=True)
    job: str = Field(max_length=32)
    region_code: str = Field(max_length=12)
    counter_id: str | None = None
    payload: dict[str, Any] | None = _json()
    status: str = Field(default="pending", index=True)  # pending | done | failed
    attempts: int = 0
    created_at: datetime = Field(sa_type=UTC_TS)
    finished_at: datetime | None = Field(default=None, sa_type=UTC_TS)
    last_error: str | None = None
    # A pending job after a failed attempt is not claimed before this (retry backoff); None: now.
    available_at: datetime | None = Field(default=None, sa_type=UTC_TS)


class IdempotencyRecord(SQLModel, table=True):
    __tablename__ = "idempotency"
    clerk_id: int = Field(primary_key=True)
    key: str = Field(primary_key=True, max_length=128)
    request_hash: str = Field(max_length=64)
    status_code: int
    body: str = Field(sa_type=sa.Text)  # the answer without its secrets (engine.idempotency)
    sealed: str | None = Field(default=None, sa_type=sa.Text)  # those secrets, AES-GCM
    created_at: datetime = Field(sa_type=UTC_TS, index=True)  # expired rows are purged by age


class Sequence(SQLModel, table=True):
    __tablename__ = "sequences"
    name: str = Field(primary_key=True, max_length=64)
    value: int = 0


# Table handles for Core statements (prepared statements and bulk reads), one per table.
T_CASE = Case.__table__
T_HIST = HistoryEvent.__table__
T_HOLD = CaseHolder.__table__
T_MAT = CaseMaterial.__table__
T_OUT = OutboxJob.__table__
