"""hall: queue tickets, ratings (好差评) and their rectifications

Revision ID: 0022_hall
Revises: 0018_outbox_notify
"""

import sqlalchemy as sa
from alembic import op

from storage.tables import UtcDateTime

revision = "0022_hall"
down_revision = "0021_guide"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tickets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("counter_id", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("number", sa.String(length=8), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("item_group", sa.String(length=1), nullable=False),
        sa.Column("item_code", sa.String(length=64), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("appointment_id", sa.Integer(), nullable=True),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("clerk_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("called_at", UtcDateTime(), nullable=True),
        sa.Column("called_by", sa.Integer(), nullable=True),
        sa.Column("window", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["counter_id"], ["counters.id"]),
        sa.ForeignKeyConstraint(["appointment_id"], ["appointments.id"]),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.ForeignKeyConstraint(["clerk_id"], ["clerks.id"]),
        sa.ForeignKeyConstraint(["called_by"], ["clerks.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("counter_id", "day", "number", name="uq_ticket_number"),
    )
    op.create_table(
        "evaluations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(length=48), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("item_code", sa.String(length=64), nullable=True),
        sa.Column("counter_id", sa.String(length=64), nullable=False),
        sa.Column("clerk_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"]),
        sa.ForeignKeyConstraint(["counter_id"], ["counters.id"]),
        sa.ForeignKeyConstraint(["clerk_id"], ["clerks.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("subject", "channel", name="uq_evaluation_subject"),
    )
    op.create_index("ix_evaluations_case_id", "evaluations", ["case_id"])
    op.create_index("ix_evaluations_counter_id", "evaluations", ["counter_id"])
    op.create_table(
        "rectifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("evaluation_id", sa.Integer(), nullable=False),
        sa.Column("counter_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("due", sa.Date(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("action", sa.Text(), nullable=True),
        sa.Column("done_at", UtcDateTime(), nullable=True),
        sa.Column("done_by", sa.Integer(), nullable=True),
        sa.Column("visit_contacted", sa.Boolean(), nullable=True),
        sa.Column("visit_note", sa.Text(), nullable=True),
        sa.Column("visit_verdict", sa.String(length=12), nullable=True),
        sa.Column("visit_at", UtcDateTime(), nullable=True),
        sa.Column("appeal_reason", sa.Text(), nullable=True),
        sa.Column("appeal_at", UtcDateTime(), nullable=True),
        sa.Column("appeal_decision", sa.String(length=12), nullable=True),
        sa.Column("appeal_note", sa.Text(), nullable=True),
        sa.Column("appeal_decided_by", sa.Integer(), nullable=True),
        sa.Column("appeal_decided_at", UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["evaluation_id"], ["evaluations.id"]),
        sa.ForeignKeyConstraint(["counter_id"], ["counters.id"]),
        sa.ForeignKeyConstraint(["done_by"], ["clerks.id"]),
        sa.ForeignKeyConstraint(["appeal_decided_by"], ["clerks.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("evaluation_id"),
    )
    op.create_index("ix_rectifications_counter_id", "rectifications", ["counter_id"])


def downgrade() -> None:
    op.drop_index("ix_rectifications_counter_id", "rectifications")
    op.drop_table("rectifications")
    op.drop_index("ix_evaluations_counter_id", "evaluations")
    op.drop_index("ix_evaluations_case_id", "evaluations")
    op.drop_table("evaluations")
    op.drop_table("tickets")
