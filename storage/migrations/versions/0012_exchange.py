"""exchange: each case's place in the change order (kept by triggers) and the export log

Revision ID: 0012_exchange
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

from storage.exchange_tables import PG_DROP, PG_TRIGGER, SQLITE_DROP, SQLITE_TRIGGERS
from storage.tables import UtcDateTime

revision = "0012_exchange"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "case_changes",
        sa.Column("case_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.PrimaryKeyConstraint("case_id"),
    )
    op.create_index("ix_case_changes_seq", "case_changes", ["seq", "case_id"], unique=False)
    op.create_table(
        "exchange_exports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("clerk_id", sa.Integer(), nullable=True),
        sa.Column("actor_name", sa.String(length=200), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("after", sa.String(length=64), nullable=True),
        sa.Column("next_cursor", sa.String(length=64), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("personal", sa.Boolean(), nullable=False),
        sa.Column("numbers", sa.JSON(), nullable=False),
        sa.Column("scope", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["clerk_id"], ["clerks.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_exchange_exports_at"), "exchange_exports", ["at"], unique=False)
    # Cases that exist already enter the order once, before anything written from now on.
    if op.get_bind().dialect.name == "postgresql":
        op.execute("INSERT INTO case_changes (case_id, seq) SELECT id, txid_current() FROM cases")
        op.execute(PG_TRIGGER)
    else:
        op.execute("INSERT INTO case_changes (case_id, seq) SELECT id, id FROM cases")
        for ddl in SQLITE_TRIGGERS:
            op.execute(ddl)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_DROP)
    else:
        for ddl in SQLITE_DROP:
            op.execute(ddl)
    op.drop_index(op.f("ix_exchange_exports_at"), table_name="exchange_exports")
    op.drop_table("exchange_exports")
    op.drop_index("ix_case_changes_seq", table_name="case_changes")
    op.drop_table("case_changes")
