"""flows: job effects and leases, certificates, waybills, tracking, notifications, case clock

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("clock_paused_at", TS, nullable=True))
        batch_op.add_column(sa.Column("paused_days", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("deadline_status", sa.String(length=8), nullable=True))
    op.create_table(
        "job_effects",
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("job", sa.String(length=32), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("worker", sa.String(length=128), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.PrimaryKeyConstraint("job_id"),
    )
    op.create_index("ix_job_effects_case_id", "job_effects", ["case_id"])
    op.create_table(
        "job_leases",
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=False),
        sa.Column("lease_until", TS, nullable=False),
        sa.PrimaryKeyConstraint("job_id"),
    )
    op.create_index("ix_job_leases_lease_until", "job_leases", ["lease_until"])
    op.create_table(
        "certificates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=40), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("decision_seq", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("item_code", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(), nullable=False),
        sa.Column("holder", sa.String(), nullable=False),
        sa.Column("counter_id", sa.String(), nullable=False),
        sa.Column("issued_at", TS, nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("bucket", sa.String(length=63), nullable=False),
        sa.Column("object_key", sa.String(length=80), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.ForeignKeyConstraint(["counter_id"], ["counters.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_id", "decision_seq"),
        sa.UniqueConstraint("job_id"),
        sa.UniqueConstraint("number"),
    )
    op.create_index("ix_certificates_case_id", "certificates", ["case_id"])
    op.create_table(
        "waybills",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=40), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=True),
        sa.Column("carrier", sa.String(length=32), nullable=False),
        sa.Column("sender_counter_id", sa.String(), nullable=False),
        sa.Column("recipient", sa.JSON(), nullable=False),
        sa.Column("contents", sa.String(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("delivered_at", TS, nullable=True),
        sa.Column("bucket", sa.String(length=63), nullable=True),
        sa.Column("object_key", sa.String(length=80), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.ForeignKeyConstraint(["sender_counter_id"], ["counters.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("job_id"),
        sa.UniqueConstraint("number"),
    )
    op.create_index("ix_waybills_case_id", "waybills", ["case_id"])
    op.create_table(
        "tracking_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("waybill_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("location", sa.String(), nullable=False),
        sa.Column("note", sa.String(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(["waybill_id"], ["waybills.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("waybill_id", "event_id"),
    )
    op.create_index("ix_tracking_events_waybill_id", "tracking_events", ["waybill_id"])
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dedupe_key", sa.String(length=128), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("audience", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("message", sa.String(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("sent_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedupe_key"),
    )
    op.create_index("ix_notifications_case_id", "notifications", ["case_id"])


def downgrade() -> None:
    for table in ("notifications", "tracking_events", "waybills", "certificates", "job_leases",
                  "job_effects"):
        op.drop_table(table)
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("deadline_status")
        batch_op.drop_column("paused_days")
        batch_op.drop_column("clock_paused_at")
