"""outbox_notify: PostgreSQL tells listening drainers which regions got claimable jobs

Revision ID: 0018_outbox_notify
Revises: 0017_appointments
"""

from alembic import op

revision = "0018_outbox_notify"
down_revision = "0017_appointments"
branch_labels = None
depends_on = None

# One NOTIFY per region and statement, delivered when the transaction commits (never for one
# that rolls back), on inserts and on updates that make a job pending again (a retry, a release).
# Statement-level with transition tables: a transition writing several jobs costs one call.
FUNCTION = """
CREATE OR REPLACE FUNCTION tongban_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE r text;
BEGIN
  FOR r IN SELECT DISTINCT region_code FROM new_jobs WHERE status = 'pending' LOOP
    PERFORM pg_notify('tongban_outbox', r);
  END LOOP;
  RETURN NULL;
END $$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite: one process drains in-process (embedded mode), nothing to wake
    op.execute(FUNCTION)
    for event in ("INSERT", "UPDATE"):
        op.execute(f"CREATE TRIGGER outbox_notify_{event.lower()} AFTER {event} ON outbox "
                   "REFERENCING NEW TABLE AS new_jobs FOR EACH STATEMENT "
                   "EXECUTE FUNCTION tongban_outbox_notify()")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for event in ("insert", "update"):
        op.execute(f"DROP TRIGGER IF EXISTS outbox_notify_{event} ON outbox")
    op.execute("DROP FUNCTION IF EXISTS tongban_outbox_notify()")
