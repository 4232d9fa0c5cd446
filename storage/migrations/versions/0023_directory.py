"""directory: imported directory versions, counter kinds, directory entries → clerks

Revision ID: 0023_directory
Revises: 0018_outbox_notify
"""

import sqlalchemy as sa
from alembic import op

from storage.tables import UtcDateTime

revision = "0023_directory"
down_revision = "0022_hall"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "directory_versions",
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(length=500), nullable=False),
        sa.Column("imported_by", sa.String(length=100), nullable=False),
        sa.Column("imported_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("version"),
    )
    op.create_index("ix_directory_versions_content_hash", "directory_versions", ["content_hash"])
    op.create_table(
        "counter_kinds",
        sa.Column("counter_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(["counter_id"], ["counters.id"]),
        sa.PrimaryKeyConstraint("counter_id"),
    )
    op.create_table(
        "directory_clerks",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("counter_key", sa.String(length=64), nullable=False),
        sa.Column("clerk_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["clerk_id"], ["clerks.id"]),
        sa.PrimaryKeyConstraint("name", "counter_key"),
        sa.UniqueConstraint("clerk_id"),
    )
    # Clerks the demo seed made before the directory was managed stand for their entries.
    op.execute("INSERT INTO directory_clerks (name, counter_key, clerk_id) "
               "SELECT name, COALESCE(counter_id, ''), MIN(id) FROM clerks GROUP BY name, COALESCE(counter_id, '')")


def downgrade() -> None:
    op.drop_table("directory_clerks")
    op.drop_table("counter_kinds")
    op.drop_table("directory_versions")
