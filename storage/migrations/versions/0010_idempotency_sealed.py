"""idempotency: secrets of a kept answer sealed apart from its body, rows purged by age

Revision ID: 0010
Revises: 0009
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("idempotency") as batch_op:
        batch_op.add_column(sa.Column("sealed", sa.Text(), nullable=True))
        batch_op.create_index(batch_op.f("ix_idempotency_created_at"), ["created_at"], unique=False)
    # Answers kept before this revision hold the query code in clear. The migration has no
    # installation key to seal it with: it takes the code out (a replay still finds the case,
    # without its code, and takes nothing in twice).
    conn = op.get_bind()
    t = sa.table("idempotency", sa.column("clerk_id", sa.Integer), sa.column("key", sa.String),
                 sa.column("body", sa.Text))
    rows = conn.execute(sa.select(t.c.clerk_id, t.c.key, t.c.body)
                        .where(t.c.body.like('%"query_code"%'))).all()
    for clerk_id, key, body in rows:
        answer = json.loads(body)
        answer.pop("query_code", None)
        conn.execute(sa.update(t).where(t.c.clerk_id == clerk_id, t.c.key == key)
                     .values(body=json.dumps(answer, ensure_ascii=False, separators=(",", ":"))))


def downgrade() -> None:
    with op.batch_alter_table("idempotency") as batch_op:
        batch_op.drop_index(batch_op.f("ix_idempotency_created_at"))
        batch_op.drop_column("sealed")
