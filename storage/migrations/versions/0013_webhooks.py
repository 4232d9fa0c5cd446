"""webhooks: the event feed's positions, webhook subscriptions and their delivery log

Revision ID: 0012_webhooks
Revises: 0012_exchange
"""

import sqlalchemy as sa
from alembic import op

from storage.tables import UtcDateTime

revision = "0012_webhooks"
down_revision = "0012_exchange"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feed_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("last_position", sa.BigInteger(), nullable=False),
        sa.Column("low_water", sa.BigInteger(), nullable=False),
        sa.Column("pending_high", sa.BigInteger(), nullable=True),
        sa.Column("pending_xmax", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    # The sequencer's one row: existing history gets its positions on the first runs, in batches.
    op.execute("INSERT INTO feed_state (id, last_position, low_water) VALUES (1, 0, 0)")
    op.create_table(
        "feed_events",
        sa.Column("position", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("history_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.ForeignKeyConstraint(["history_id"], ["history.id"]),
        sa.PrimaryKeyConstraint("position"),
        sa.UniqueConstraint("history_id"),
    )
    op.create_table(
        "feed_case_counters",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("counter_id", sa.String(length=64), nullable=False),
        sa.Column("region_code", sa.String(length=12), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.PrimaryKeyConstraint("case_id", "counter_id"),
    )
    op.create_index("ix_feed_case_counters_counter", "feed_case_counters", ["counter_id", "case_id"])
    op.create_index("ix_feed_case_counters_region", "feed_case_counters", ["region_code", "case_id"])
    op.create_table(
        "webhooks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clerk_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("region", sa.String(length=64), nullable=True),
        sa.Column("counter", sa.String(length=64), nullable=True),
        sa.Column("item", sa.String(length=64), nullable=True),
        sa.Column("kind", sa.String(length=64), nullable=True),
        sa.Column("secret_sealed", sa.Text(), nullable=False),
        sa.Column("cursor", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("deleted_at", UtcDateTime(), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UtcDateTime(), nullable=True),
        sa.Column("job_id", sa.String(length=36), nullable=True),
        sa.Column("last_attempt_at", UtcDateTime(), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(["clerk_id"], ["clerks.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_webhooks_clerk_id", "webhooks", ["clerk_id"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("webhook_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(["webhook_id"], ["webhooks.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_webhook_deliveries_webhook", "webhook_deliveries", ["webhook_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_webhook", "webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_index("ix_webhooks_clerk_id", "webhooks")
    op.drop_table("webhooks")
    op.drop_index("ix_feed_case_counters_region", "feed_case_counters")
    op.drop_index("ix_feed_case_counters_counter", "feed_case_counters")
    op.drop_table("feed_case_counters")
    op.drop_table("feed_events")
    op.drop_table("feed_state")
