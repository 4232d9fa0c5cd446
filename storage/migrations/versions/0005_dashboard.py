"""dashboard: supervisor regions, and indexes for dashboards, queues and case pages

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

OPEN = "finished_at IS NULL"


def upgrade() -> None:
    op.create_table(
        "supervisor_regions",
        sa.Column("clerk_id", sa.Integer(), sa.ForeignKey("clerks.id"), nullable=False),
        sa.Column("region_code", sa.String(length=12), sa.ForeignKey("regions.code"), nullable=False),
        sa.PrimaryKeyConstraint("clerk_id", "region_code"),
    )
    # Throughput per day: cases received / finished by the supervised counters over a period,
    # read from the index alone (item_code rides along for the item filter).
    op.create_index("ix_cases_intake_created", "cases", ["intake_counter_id", "created_at"],
                    postgresql_include=["item_code"])
    op.create_index("ix_cases_intake_finished", "cases", ["intake_counter_id", "finished_at"],
                    postgresql_include=["item_code"])
    # Deadlines at risk and stuck cases only look at open cases: keep those indexes small.
    op.create_index("ix_cases_open_due", "cases", ["promised_due"],
                    postgresql_where=sa.text(OPEN), sqlite_where=sa.text(OPEN))
    op.create_index("ix_cases_open_updated", "cases", ["updated_at"],
                    postgresql_where=sa.text(OPEN), sqlite_where=sa.text(OPEN))
    # The dashboard's grouped scan of open cases reads only this index (index-only scan).
    op.create_index("ix_cases_open_cover", "cases", ["id"],
                    postgresql_include=["item_code", "state", "promised_due", "updated_at", "assignees"],
                    postgresql_where=sa.text(OPEN), sqlite_where=sa.text(OPEN))
    # Hand-off times: handoff jobs over a period.
    op.create_index("ix_outbox_job_created", "outbox", ["job", "created_at"])
    # A counter's queue joins holders to cases by case id in id order.
    op.create_index("ix_case_holders_counter_case", "case_holders", ["counter_id", "case_id"])


def downgrade() -> None:
    op.drop_index("ix_case_holders_counter_case", "case_holders")
    op.drop_index("ix_outbox_job_created", "outbox")
    op.drop_index("ix_cases_open_cover", "cases")
    op.drop_index("ix_cases_open_updated", "cases")
    op.drop_index("ix_cases_open_due", "cases")
    op.drop_index("ix_cases_intake_finished", "cases")
    op.drop_index("ix_cases_intake_created", "cases")
    op.drop_table("supervisor_regions")
