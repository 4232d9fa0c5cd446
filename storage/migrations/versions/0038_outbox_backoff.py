"""outbox backoff: a job that failed an attempt waits until ``available_at`` before it is claimed again

Revision ID: 0038_outbox_backoff
Revises: 0034_counter_service
"""

import sqlalchemy as sa
from alembic import op

from storage.tables import UtcDateTime

revision = "0038_outbox_backoff"
down_revision = "0034_counter_service"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch_op:
        batch_op.add_column(sa.Column("available_at", UtcDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch_op:
        batch_op.drop_column("available_at")
