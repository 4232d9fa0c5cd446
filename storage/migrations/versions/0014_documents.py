"""documents: the alliance's member units (with their 文号 schemes), counters' units, and written notices

Revision ID: 0014_documents
Revises: 0012_webhooks
"""

import sqlalchemy as sa
from alembic import op

from storage.tables import UtcDateTime

revision = "0014_documents"
down_revision = "0012_webhooks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "units",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("code", sa.String(length=18), nullable=False),
        sa.Column("region_code", sa.String(), nullable=False),
        sa.Column("doc_abbr", sa.String(length=16), nullable=False),
        sa.Column("doc_format", sa.String(length=64), nullable=False),
        sa.Column("doc_words", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["region_code"], ["regions.code"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    with op.batch_alter_table("units", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_units_region_code"), ["region_code"], unique=False)

    op.create_table(
        "case_documents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("number", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(), nullable=False),
        sa.Column("unit_id", sa.String(length=32), nullable=False),
        sa.Column("counter_id", sa.String(length=64), nullable=True),
        sa.Column("event_seq", sa.Integer(), nullable=False),
        sa.Column("issued_at", UtcDateTime(), nullable=False),
        sa.Column("issued_by", sa.Integer(), nullable=True),
        sa.Column("issued_by_name", sa.String(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("evidence_id", sa.Integer(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.ForeignKeyConstraint(["evidence_id"], ["evidence.id"]),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_id", "kind", "event_seq"),
        sa.UniqueConstraint("number"),
    )
    with op.batch_alter_table("case_documents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_documents_case_id"), ["case_id"], unique=False)

    with op.batch_alter_table("counters", schema=None) as batch_op:
        batch_op.add_column(sa.Column("unit_id", sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f("ix_counters_unit_id"), ["unit_id"], unique=False)
        batch_op.create_foreign_key("fk_counters_unit_id", "units", ["unit_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("counters", schema=None) as batch_op:
        batch_op.drop_constraint("fk_counters_unit_id", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_counters_unit_id"))
        batch_op.drop_column("unit_id")
    with op.batch_alter_table("case_documents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_documents_case_id"))
    op.drop_table("case_documents")
    with op.batch_alter_table("units", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_units_region_code"))
    op.drop_table("units")
