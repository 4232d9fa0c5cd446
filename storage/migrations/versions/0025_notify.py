"""notify: notifications are delivered (SMS gateway, SMTP): channel, address, status, retries, the delivery log

Revision ID: 0025_notify
Revises: 0023_directory
"""

import sqlalchemy as sa
from alembic import op

from storage.tables import UtcDateTime

revision = "0025_notify"
down_revision = "0023_directory"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notification_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("notification_id", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("error", sa.String(), nullable=True),
        sa.Column("provider_id", sa.String(length=200), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(["notification_id"], ["notifications.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_notification_attempts_notification_id", "notification_attempts", ["notification_id"])
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("subject", sa.String(length=200), nullable=False, server_default=""))
        batch.add_column(sa.Column("channel", sa.String(length=8), nullable=True))
        batch.add_column(sa.Column("address", sa.String(length=500), nullable=True))
        # Rows queued before anything delivered them are not sent now, days late: expired.
        batch.add_column(sa.Column("status", sa.String(length=12), nullable=False, server_default="expired"))
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("next_attempt_at", UtcDateTime(), nullable=True))
        batch.add_column(sa.Column("lease_owner", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("lease_until", UtcDateTime(), nullable=True))
        batch.add_column(sa.Column("last_error", sa.String(), nullable=True))
        batch.add_column(sa.Column("provider_id", sa.String(length=200), nullable=True))
        batch.alter_column("case_id", existing_type=sa.Integer(), nullable=True)
        batch.create_index("ix_notifications_status", ["status"])
    # The defaults served the rows above; new rows get theirs from the table (status pending).
    with op.batch_alter_table("notifications") as batch:
        batch.alter_column("subject", existing_type=sa.String(length=200), server_default=None)
        batch.alter_column("status", existing_type=sa.String(length=12), server_default=None)
        batch.alter_column("attempts", existing_type=sa.Integer(), server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.drop_index("ix_notifications_status")
        batch.alter_column("case_id", existing_type=sa.Integer(), nullable=False)
        for column in ("provider_id", "last_error", "lease_until", "lease_owner", "next_attempt_at", "attempts",
                       "status", "address", "channel", "subject"):
            batch.drop_column(column)
    op.drop_index("ix_notification_attempts_notification_id", "notification_attempts")
    op.drop_table("notification_attempts")
