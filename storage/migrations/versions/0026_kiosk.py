"""kiosk: a self-service booth's supervising counter

Revision ID: 0026_kiosk
Revises: 0023_directory
"""

import sqlalchemy as sa
from alembic import op

revision = "0026_kiosk"
down_revision = "0025_notify"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("counter_kinds") as batch:
        batch.add_column(sa.Column("supervised_by", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("counter_kinds") as batch:
        batch.drop_column("supervised_by")
