"""kiosk video: 视频帮办 rooms opened by a self-service booth without a case, and their own log

Revision ID: 0031_kiosk_video
Revises: 0026_kiosk
"""

import sqlalchemy as sa
from alembic import op

from storage.tables import UtcDateTime

revision = "0031_kiosk_video"
down_revision = "0026_kiosk"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("video_rooms") as batch:
        batch.alter_column("case_id", existing_type=sa.Integer(), nullable=True)
        batch.add_column(sa.Column("booth_id", sa.String(length=64), nullable=True))
    op.create_table(
        "video_room_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("room_id", sa.String(length=32), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_name", sa.String(length=200), nullable=False),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["room_id"], ["video_rooms.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_video_room_events_room_id", "video_room_events", ["room_id"])


def downgrade() -> None:
    op.drop_index("ix_video_room_events_room_id", "video_room_events")
    op.drop_table("video_room_events")
    op.execute("DELETE FROM video_participants WHERE room_id IN (SELECT id FROM video_rooms WHERE case_id IS NULL)")
    op.execute("DELETE FROM video_rooms WHERE case_id IS NULL")
    with op.batch_alter_table("video_rooms") as batch:
        batch.drop_column("booth_id")
        batch.alter_column("case_id", existing_type=sa.Integer(), nullable=False)
