"""outbox region channels: each region's listening drainer gets a NOTIFY channel of its own

The trigger of 0018 notified one channel, ``tongban_outbox``, with the region as payload: every
region's drainer woke for every commit of every region (about 333 nationally) and dropped the
payloads of the others. Now it notifies ``tongban_outbox_<region>`` (``flows.listen.channel``;
the payload is still the region), so a drainer hears its own region's commits only. The
triggers of 0018 stay; only their function changes.

Revision ID: 0035_outbox_region_channels
Revises: 0038_outbox_backoff
"""

from alembic import op

revision = "0035_outbox_region_channels"
down_revision = "0038_outbox_backoff"
branch_labels = None
depends_on = None

# ``outbox.region_code`` is at most 12 characters, so the channel stays well under PostgreSQL's
# 63; pg_notify takes the name as given (no case folding), as ``LISTEN "<name>"`` does.
FUNCTION = """
CREATE OR REPLACE FUNCTION tongban_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE r text;
BEGIN
  FOR r IN SELECT DISTINCT region_code FROM new_jobs WHERE status = 'pending' LOOP
    PERFORM pg_notify('tongban_outbox_' || r, r);
  END LOOP;
  RETURN NULL;
END $$
"""

# 0018's function, as it was: one channel for every region.
SHARED_CHANNEL = """
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
        return  # SQLite: no triggers (0018), one process drains in-process
    op.execute(FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(SHARED_CHANNEL)
