"""the law's periods on the case (受理, 补正 notice, certificate, provisional, 延期) and its companion clerk

Revision ID: 0009
Revises: 0008
"""

from datetime import date

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
    # Cases already running. Those past the intake phase (status other than 已接件 and 补正) had their
    # periods counted from 收件, which stands for 受理 here; the others start them at their 受理.
    op.execute("UPDATE cases SET accepted_at = created_at WHERE status_code NOT IN (1, 6, 7)")
    # The clerk who took a case in accompanies it. The old sticky assignees (the first clerk to act
    # at each counter) would now read as claims and refuse the next step's people: open cases start
    # unclaimed.
    op.execute("UPDATE cases SET companion_id = (SELECT h.actor_id FROM history h "
               "WHERE h.case_id = cases.id AND h.kind = 'intake')")
    op.execute("UPDATE cases SET assignees = '{}' WHERE finished_at IS NULL")
    # Due dates in a year the calendar package does not know were counted from weekends alone.
    first_unknown = next(y for y in range(2004, 2100) if not _known(y))
    op.get_bind().execute(sa.text("UPDATE cases SET deadline_provisional = :t WHERE finished_at IS NULL "
                                  "AND legal_due >= :d"), {"t": True, "d": date(first_unknown, 1, 1)})


def _known(year: int) -> bool:
    import chinese_calendar

    try:
        chinese_calendar.is_workday(date(year, 6, 1))
        return True
    except NotImplementedError:
        return False


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch_op:
        batch_op.drop_constraint("fk_cases_companion_id_clerks", type_="foreignkey")
        for col in ("companion_id", "extended_days", "deadline_provisional", "certificate_due",
                    "supplement_notice_due", "accepted_at"):
            batch_op.drop_column(col)
