"""video: rooms bound to a case and a state, participants, recordings

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "video_rooms",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("case_id", sa.Integer(), sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("adhoc", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("opened_by", sa.Integer(), sa.ForeignKey("clerks.id"), nullable=False),
        sa.Column("counter_id", sa.String(length=64), nullable=False),
        sa.Column("opened_at", TS, nullable=False),
        sa.Column("closed_at", TS, nullable=True),
        sa.Column("close_reason", sa.String(length=32), nullable=True),
        sa.Column("checklist", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_video_rooms_case_id", "video_rooms", ["case_id"])
    op.create_index("ix_video_rooms_number", "video_rooms", ["number"])
    op.create_index("ix_video_rooms_status", "video_rooms", ["status"])
    op.create_table(
        "video_participants",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("room_id", sa.String(length=32), sa.ForeignKey("video_rooms.id"), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("clerk_id", sa.Integer(), sa.ForeignKey("clerks.id"), nullable=True),
        sa.Column("joined_at", TS, nullable=False),
        sa.Column("left_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_video_participants_room_id", "video_participants", ["room_id"])
    op.create_table(
        "video_recordings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("room_id", sa.String(length=32), sa.ForeignKey("video_rooms.id"), nullable=False),
        sa.Column("participant_id", sa.String(length=32), sa.ForeignKey("video_participants.id"),
                  nullable=False),
        sa.Column("bucket", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("content_type", sa.String(length=64), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("ended_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_video_recordings_room_id", "video_recordings", ["room_id"])


def downgrade() -> None:
    op.drop_table("video_recordings")
    op.drop_table("video_participants")
    op.drop_table("video_rooms")
