"""Alembic environment: runs against the connection handed in by ``storage.migrate``."""

from alembic import context
from sqlmodel import SQLModel

import storage.appointment_tables  # noqa: F401  (分时服务 slots and bookings)
import storage.calendar_tables  # noqa: F401  (official holiday schedules)
import storage.dashboard_tables  # noqa: F401  (supervisor regions, dashboard indexes)
import storage.directory_tables  # noqa: F401  (directory versions, counter kinds, directory clerks)
import storage.documents  # noqa: F401  (scanned pages, evidence)
import storage.exchange_tables  # noqa: F401  (the change order of cases, the export log)
import storage.flow_tables  # noqa: F401  (certificates, waybills, job effects)
import storage.guard_tables  # noqa: F401  (wrong query codes per case)
import storage.hall_tables  # noqa: F401  (queue tickets, ratings, rectifications)
import storage.notice_tables  # noqa: F401  (written notices and their numbers)
import storage.prereview_tables  # noqa: F401  (要件预审 before any case)
import storage.seal_tables  # noqa: F401  (units' signing keys and certificates)
import storage.search_tables  # noqa: F401  (the case search index)
import storage.tables  # noqa: F401  (registers the tables)
import storage.video_tables  # noqa: F401  (video rooms, participants, recordings)
import storage.webhook_tables  # noqa: F401  (event feed positions, webhook subscriptions and deliveries)

target_metadata = SQLModel.metadata
connection = context.config.attributes["connection"]


def _include_name(name: str | None, type_: str, parent_names: object) -> bool:
    # The case search's dialect-specific indexes (SQLite's FTS5 table case_search_fts and its shadow
    # tables, PostgreSQL's pg_trgm GIN index) are made by the migration with raw SQL: no model has
    # them, and autogenerate must not propose to drop them.
    if type_ == "table" and name is not None and name.startswith("case_search_fts"):
        return False
    return not (type_ == "index" and name == "ix_case_search_trgm")


context.configure(
    connection=connection,
    target_metadata=target_metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    include_name=_include_name,
)
with context.begin_transaction():
    context.run_migrations()
