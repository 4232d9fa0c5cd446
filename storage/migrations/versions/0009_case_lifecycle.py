"""the law's periods on the case (受理, 补正 notice, certificate, provisional, 延期) and its companion clerk

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

from storage.tables import UtcDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch_op:
        batch_op.add_column(sa.Column("accepted_at", UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column("supplement_notice_due", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("certificate_due", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("deadline_provisional", sa.Boolean(), server_default=sa.false(),
                                      nullable=False))
        batch_op.add_column(sa.Column("extended_days", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("companion_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_cases_companion_id_clerks", "clerks", ["companion_id"], ["id"])
    # Cases already running: their deadlines were counted from 收件, which stands for 受理 here, and
    # the clerk who took them in accompanies them.
    op.execute("UPDATE cases SET accepted_at = created_at")
    op.execute("UPDATE cases SET companion_id = (SELECT h.actor_id FROM history h "
               "WHERE h.case_id = cases.id AND h.kind = 'intake')")


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch_op:
        batch_op.drop_constraint("fk_cases_companion_id_clerks", type_="foreignkey")
        for col in ("companion_id", "extended_days", "deadline_provisional", "certificate_due",
                    "supplement_notice_due", "accepted_at"):
            batch_op.drop_column(col)
