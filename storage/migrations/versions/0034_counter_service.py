"""counter service: the ticket machine's hours, daily capacity and item groups per counter and item

Revision ID: 0034_counter_service
Revises: 0033_digest_indexes
"""

import sqlalchemy as sa
from alembic import op

revision = "0034_counter_service"
down_revision = "0033_digest_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "counter_service",
        sa.Column("counter_id", sa.String(length=64), nullable=False),
        sa.Column("item_code", sa.String(length=64), nullable=False),
        sa.Column("hours", sa.String(length=200), nullable=True),
        sa.Column("capacity", sa.Integer(), nullable=True),
        sa.Column("item_group", sa.String(length=1), nullable=True),
        sa.ForeignKeyConstraint(["counter_id"], ["counters.id"]),
        sa.PrimaryKeyConstraint("counter_id", "item_code"),
    )
    op.create_table(
        "counter_groups",
        sa.Column("counter_id", sa.String(length=64), nullable=False),
        sa.Column("letter", sa.String(length=1), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.ForeignKeyConstraint(["counter_id"], ["counters.id"]),
        sa.PrimaryKeyConstraint("counter_id", "letter"),
    )


def downgrade() -> None:
    op.drop_table("counter_groups")
    op.drop_table("counter_service")
