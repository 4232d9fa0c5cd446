"""guide: 要件预审 (pre-reviews and their drafts, before any case)

Revision ID: 0021_guide
Revises: 0018_outbox_notify
"""

import sqlalchemy as sa
from alembic import op

from storage.tables import UtcDateTime

revision = "0021_guide"
down_revision = "0020_case_search"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prereviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("item_code", sa.String(length=64), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("case_number", sa.String(length=32), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    op.create_index("ix_prereviews_item_code", "prereviews", ["item_code"])
    op.create_table(
        "prereview_drafts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("prereview_id", sa.Integer(), nullable=False),
        sa.Column("material_id", sa.String(length=64), nullable=False),
        sa.Column("file_name", sa.String(length=200), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("verdict", sa.String(length=8), nullable=True),
        sa.Column("comment", sa.String(length=500), nullable=True),
        sa.Column("reviewer", sa.String(length=60), nullable=True),
        sa.Column("reviewed_at", UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["prereview_id"], ["prereviews.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("prereview_id", "material_id", name="uq_prereview_draft"),
    )
    op.create_index("ix_prereview_drafts_prereview_id", "prereview_drafts", ["prereview_id"])


def downgrade() -> None:
    op.drop_index("ix_prereview_drafts_prereview_id", "prereview_drafts")
    op.drop_table("prereview_drafts")
    op.drop_index("ix_prereviews_item_code", "prereviews")
    op.drop_table("prereviews")
