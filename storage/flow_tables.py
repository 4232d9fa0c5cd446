"""Tables of the automated work (outbox jobs drained by the flows): job effects and leases, certificates, waybills,
tracking events and notifications. Every effect row carries the job id that produced it under
a unique constraint, so a retried or replayed job can never repeat its effect.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from storage.tables import UTC_TS


def _json(**kw: Any) -> Any:
    return Field(default=None, sa_column=sa.Column(sa.JSON, **kw))


class JobEffect(SQLModel, table=True):
    """One row per finished job: written in the same transaction as the job's effect."""

    __tablename__ = "job_effects"
    job_id: str = Field(primary_key=True, max_length=36)
    job: str = Field(max_length=32)
    case_id: int = Field(foreign_key="cases.id", index=True)
    at: datetime = Field(sa_type=UTC_TS)
    worker: str = Field(default="", max_length=128)
    result: dict[str, Any] | None = _json()


class JobLease(SQLModel, table=True):
    """Who is running a claimed outbox job and until when; an expired lease may be reclaimed."""

    __tablename__ = "job_leases"
    job_id: str = Field(primary_key=True, max_length=36)
    owner: str = Field(max_length=128)
    lease_until: datetime = Field(sa_type=UTC_TS, index=True)


class Certificate(SQLModel, table=True):
    """A certificate (证照) issued for a case's decision: exactly one per (case, decision, declared
    certificate), and the certificate library's (电子证照库) record of it in GB/T 36903's terms."""

    __tablename__ = "certificates"
    __table_args__ = (sa.UniqueConstraint("case_id", "decision_seq", "cert_key",
                                          name="uq_certificates_case_decision_key"),)
    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(unique=True, max_length=40)  # 证照编号
    case_id: int = Field(foreign_key="cases.id", index=True)
    decision_seq: int  # history seq of the approving transition
    # The item's declared certificate (a bundle issues several for one decision).
    cert_key: str = Field(default="certificate", max_length=64)
    job_id: str = Field(max_length=36, index=True)
    # numbered: the number is taken (in its own transaction) and the PDF is being made;
    # issued: the signed PDF is stored. Only issued ones are shown or found.
    state: str = Field(default="issued", max_length=16)
    cert_type: str = Field(default="", max_length=64, index=True)  # 证照类型
    holder_code: str = Field(default="", max_length=32, index=True)  # 持证主体代码
    holder_code_type: str = Field(default="", max_length=16)  # 统一社会信用代码 | 公民身份号码
    unit_id: str | None = Field(default=None, foreign_key="units.id", max_length=32)
    issuer_name: str = ""  # 颁发机构
    issuer_code: str = Field(default="", max_length=18)  # 颁发机构代码
    valid_from: date | None = None
    data: dict[str, Any] | None = _json()  # the fields it carries: [{id, label, value, printed}]
    revoked_reason: str | None = None
    item_code: str = Field(max_length=64)
    title: str
    holder: str
    counter_id: str = Field(foreign_key="counters.id")
    issued_at: datetime = Field(sa_type=UTC_TS)
    valid_until: date | None = None
    bucket: str = Field(max_length=63)
    object_key: str = Field(max_length=80)
    sha256: str = Field(max_length=64, index=True)  # /verify finds an uploaded PDF by it
    size: int
    revoked_at: datetime | None = Field(default=None, sa_type=UTC_TS)
    revoked_by: str | None = None


class Waybill(SQLModel, table=True):
    """One shipment (邮寄送达) of a case's result."""

    __tablename__ = "waybills"
    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(unique=True, max_length=40)
    case_id: int = Field(foreign_key="cases.id", index=True)
    job_id: str | None = Field(default=None, unique=True, max_length=36)
    carrier: str = Field(max_length=32)
    sender_counter_id: str = Field(foreign_key="counters.id")
    recipient: dict[str, Any] = _json(nullable=False)
    contents: str
    status: str = Field(default="created", max_length=16)  # created | in_transit | delivered | returned
    created_at: datetime = Field(sa_type=UTC_TS)
    delivered_at: datetime | None = Field(default=None, sa_type=UTC_TS)
    bucket: str | None = Field(default=None, max_length=63)
    object_key: str | None = Field(default=None, max_length=80)


class TrackingEvent(SQLModel, table=True):
    """A tracking update from a clerk or a carrier callback; carriers' event ids dedupe replays."""

    __tablename__ = "tracking_events"
    __table_args__ = (sa.UniqueConstraint("waybill_id", "event_id"),)
    id: int | None = Field(default=None, primary_key=True)
    waybill_id: int = Field(foreign_key="waybills.id", index=True)
    event_id: str = Field(max_length=64)
    at: datetime = Field(sa_type=UTC_TS)
    status: str = Field(max_length=16)
    location: str = ""
    note: str = ""
    source: str = Field(max_length=16)  # clerk | carrier


class Notification(SQLModel, table=True):
    """A message for an applicant or supervisors, written in the transaction of the fact it tells
    (a booking, a transition's job, a 差评): the outbox of messages that ``engine.notify`` delivers.
    ``dedupe_key`` makes queuing idempotent (``job:<id>`` for a job's message); ``channel`` and
    ``address`` are resolved when it is first claimed unless the writer knew them (a booking's phone)."""

    __tablename__ = "notifications"
    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(unique=True, max_length=128)
    case_id: int | None = Field(default=None, foreign_key="cases.id", index=True)  # None: a booking's
    audience: str = Field(max_length=16)  # applicant | supervisor
    kind: str = Field(max_length=32)
    message: str
    created_at: datetime = Field(sa_type=UTC_TS)
    sent_at: datetime | None = Field(default=None, sa_type=UTC_TS)
    subject: str = Field(default="", max_length=200)
    channel: str | None = Field(default=None, max_length=8)  # sms | email
    address: str | None = Field(default=None, max_length=500)  # the phone number or mail address
    # pending → sent | failed (gave up, or refused for good) | unrouted (nowhere to send it) |
    # expired (older than notify_max_age_hours when a sender could first take it)
    status: str = Field(default="pending", max_length=12, index=True)
    attempts: int = 0
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTC_TS)
    lease_owner: str | None = Field(default=None, max_length=128)
    lease_until: datetime | None = Field(default=None, sa_type=UTC_TS)
    last_error: str | None = None
    provider_id: str | None = Field(default=None, max_length=200)  # the gateway's id, the Message-ID


class NotificationAttempt(SQLModel, table=True):
    """The delivery log: one row per attempt to send a notification, whatever came of it."""

    __tablename__ = "notification_attempts"
    id: int | None = Field(default=None, primary_key=True)
    notification_id: int = Field(foreign_key="notifications.id", index=True)
    attempt: int
    at: datetime = Field(sa_type=UTC_TS)
    channel: str = Field(max_length=8)
    ok: bool
    error: str | None = None
    provider_id: str | None = Field(default=None, max_length=200)
    duration_ms: int = 0
    worker: str = Field(default="", max_length=128)


# Table handles for Core statements (prepared statements and bulk reads), one per table.
T_CERT = Certificate.__table__
T_LEASE = JobLease.__table__
T_NOTE = Notification.__table__
T_NOTE_LOG = NotificationAttempt.__table__
