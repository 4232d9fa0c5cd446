"""seals: units' signing keys (sealed) and certificates

Revision ID: 0015_seals
Revises: 0014_documents
"""

import sqlalchemy as sa
from alembic import op

from storage.tables import UtcDateTime

revision = "0015_seals"
down_revision = "0014_documents"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "unit_seals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.String(length=32), nullable=False),
        sa.Column("unit_name", sa.String(length=200), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("certificate_pem", sa.Text(), nullable=False),
        sa.Column("chain_pem", sa.Text(), nullable=False),
        sa.Column("sealed_key", sa.LargeBinary(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=500), nullable=False),
        sa.Column("not_before", UtcDateTime(), nullable=False),
        sa.Column("not_after", UtcDateTime(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("retired_at", UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("fingerprint"),
    )
    op.create_index("ix_unit_seals_unit_id", "unit_seals", ["unit_id"])


def downgrade() -> None:
    op.drop_index("ix_unit_seals_unit_id", table_name="unit_seals")
    op.drop_table("unit_seals")
