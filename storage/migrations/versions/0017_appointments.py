"""appointments: 分时服务 slots (capacity, places booked) and bookings

Revision ID: 0017_appointments
Revises: 0016_certificate_library
"""

import sqlalchemy as sa
from alembic import op

from storage.tables import UtcDateTime

revision = "0017_appointments"
down_revision = "0016_certificate_library"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "appointment_slots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("counter_id", sa.String(length=64), nullable=False),
        sa.Column("item_code", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("start", sa.String(length=5), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("booked", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["counter_id"], ["counters.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("counter_id", "item_code", "day", "start", name="uq_appointment_slot"),
    )
    op.create_table(
        "appointments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("slot_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("cancelled_at", UtcDateTime(), nullable=True),
        sa.Column("checked_in_at", UtcDateTime(), nullable=True),
        sa.Column("no_show_at", UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["slot_id"], ["appointment_slots.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    op.create_index("ix_appointments_slot_id", "appointments", ["slot_id"])
    op.create_index("ix_appointments_phone", "appointments", ["phone"])


def downgrade() -> None:
    op.drop_index("ix_appointments_phone", "appointments")
    op.drop_index("ix_appointments_slot_id", "appointments")
    op.drop_table("appointments")
    op.drop_table("appointment_slots")
