"""indexes a transition paid for and no query used

Every transition rewrites the case's state, so ``ix_cases_state`` cost WAL pages on each one;
the only query filtering on state (a counter's queue) is driven by the holder index and
filters state afterwards. ``ix_case_holders_counter_id`` is the prefix of
``ix_case_holders_counter_case`` (0005), which serves the same lookups.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_cases_state", "cases")
    op.drop_index("ix_case_holders_counter_id", "case_holders")


def downgrade() -> None:
    op.create_index("ix_case_holders_counter_id", "case_holders", ["counter_id"])
    op.create_index("ix_cases_state", "cases", ["state"])
