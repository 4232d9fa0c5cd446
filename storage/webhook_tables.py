"""Tables of the event feed and of webhook subscriptions.

``feed_events`` gives every committed history event a position: the order integrators read
events in, assigned after commit by one sequencer at a time (``engine.events``), so a position
handed out is never followed by a smaller one. ``feed_state`` is the sequencer's single row.
``feed_case_counters`` lists the counters taking part in each case (fixed at intake), with their
regions: what the feed filters and scopes on. ``webhooks`` are subscriptions with their delivery
cursor; ``webhook_deliveries`` is the log of every attempt.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from storage.tables import UTC_TS


class FeedEvent(SQLModel, table=True):
    __tablename__ = "feed_events"
    position: int = Field(sa_column=sa.Column(sa.BigInteger, primary_key=True, autoincrement=False))
    history_id: int = Field(foreign_key="history.id", unique=True)
    case_id: int = Field(foreign_key="cases.id")


class FeedCaseCounter(SQLModel, table=True):
    __tablename__ = "feed_case_counters"
    __table_args__ = (
        sa.Index("ix_feed_case_counters_counter", "counter_id", "case_id"),
        sa.Index("ix_feed_case_counters_region", "region_code", "case_id"),
    )
    case_id: int = Field(foreign_key="cases.id", primary_key=True)
    counter_id: str = Field(primary_key=True, max_length=64)
    region_code: str = Field(max_length=12)


class FeedState(SQLModel, table=True):
    """One row (id 1). ``low_water``: every history id up to it has its position or never
    committed. ``pending_high``/``pending_xmax`` (PostgreSQL): the newest history id seen and
    the first transaction id not yet started when it was seen; once every transaction below
    ``pending_xmax`` has ended, ``low_water`` may move up to ``pending_high``."""

    __tablename__ = "feed_state"
    id: int = Field(primary_key=True)
    last_position: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False))
    low_water: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False))
    pending_high: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger))
    pending_xmax: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger))


class Webhook(SQLModel, table=True):
    """A subscription: events its owner may see, matching its filters, POSTed to ``url`` in feed
    order. ``cursor`` is the position delivered up to (moved only after a 2xx)."""

    __tablename__ = "webhooks"
    id: int | None = Field(default=None, primary_key=True)
    clerk_id: int = Field(foreign_key="clerks.id", index=True)
    url: str = Field(max_length=2000)
    region: str | None = Field(default=None, max_length=64)
    counter: str | None = Field(default=None, max_length=64)
    item: str | None = Field(default=None, max_length=64)
    kind: str | None = Field(default=None, max_length=64)
    secret_sealed: str = Field(sa_type=sa.Text)  # AES-GCM under the installation's webhook-key
    cursor: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False))
    created_at: datetime = Field(sa_type=UTC_TS)
    deleted_at: datetime | None = Field(default=None, sa_type=UTC_TS)
    failures: int = 0  # consecutive failed attempts on the event at the cursor
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTC_TS)  # backoff
    job_id: str | None = Field(default=None, max_length=36)  # the outbox job delivering it now
    last_attempt_at: datetime | None = Field(default=None, sa_type=UTC_TS)
    last_status: int | None = None
    last_error: str | None = Field(default=None, max_length=500)


class WebhookDelivery(SQLModel, table=True):
    """One attempt to deliver one event: what the receiver answered, or why nothing came back."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (sa.Index("ix_webhook_deliveries_webhook", "webhook_id", "id"),)
    id: int | None = Field(default=None, primary_key=True)
    webhook_id: int = Field(foreign_key="webhooks.id")
    event_id: str = Field(max_length=64)
    position: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    attempt: int
    at: datetime = Field(sa_type=UTC_TS)
    status_code: int | None = None
    error: str | None = Field(default=None, max_length=500)
    duration_ms: int = 0
    job_id: str | None = Field(default=None, max_length=36)


# Table handles for Core statements, one per table.
T_FEED = FeedEvent.__table__
T_FEED_CASES = FeedCaseCounter.__table__
T_FEED_STATE = FeedState.__table__
T_HOOK = Webhook.__table__
T_HOOK_LOG = WebhookDelivery.__table__
