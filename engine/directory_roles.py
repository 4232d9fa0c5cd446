"""Least privilege for regional workers: a PostgreSQL role per region of the directory, and
row-level security so that a region's worker can claim, lease and complete only its own jobs.

``apply(engine)`` (``tongban directory roles``) creates, for the directory's regions:

- ``<prefix>`` (NOLOGIN): what every worker may do: read the tables, write what jobs write
  (cases, history, certificates, documents, notifications, waybills, effects, …), and nothing of
  the directory, the clerks, their tokens, the catalog or the migrations (read only).
- ``<prefix>_<region>`` (NOLOGIN, member of ``<prefix>``): its policies on ``outbox`` and
  ``job_leases``: it sees, claims, leases and completes the jobs of its region only. It may
  insert jobs for any region (a follow-up, such as the hand-off back to the intake counter).
- ``<prefix>_dispatcher`` (NOLOGIN, member of ``<prefix>``): sees every region's jobs (it
  starts their drains), and queues webhook deliveries.

A login is then a member of one region's role: ``CREATE ROLE qd_worker LOGIN PASSWORD '…' IN ROLE
tongban_worker_370211`` and that worker's ``TONGBAN_DATABASE_URL`` names ``qd_worker``. The API and
``tongban db upgrade`` keep the owner's connection: row-level security does not apply to a
table's owner (not FORCEd), so nothing changes for them. Running the command again after a
directory import adds the new regions' roles and policies (idempotent). Roles are per cluster,
policies per database.
"""

from __future__ import annotations

import re

import sqlalchemy as sa

from storage.tables import Region

DEFAULT_PREFIX = "tongban_worker"
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")
# Written by the directory import, the catalog, clerk and token administration and migrations
# only: a worker reads them.
READ_ONLY = ("alembic_version", "api_tokens", "clerks", "counter_items", "counter_kinds", "counters",
             "counter_service", "counter_groups",
             "directory_clerks", "directory_versions", "item_versions", "regions", "supervisor_regions",
             "units", "unit_seals", "calendar_schedules")


def _role_sql(name: str, member_of: str | None = None) -> str:
    grant = f"; GRANT {member_of} TO {name}" if member_of else ""
    # Two nodes running the command at once: the second CREATE fails with duplicate_object.
    return (f"DO $$ BEGIN CREATE ROLE {name} NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$"
            f"{grant}")


def statements(regions: list[str], prefix: str = DEFAULT_PREFIX, database: str = "") -> list[str]:
    """The SQL ``apply`` runs, in order (also what ``tongban directory roles --print`` shows)."""
    if not _NAME.match(prefix):
        raise ValueError(f"角色名前缀只能用小写字母、数字和下划线: {prefix}")
    bad = [r for r in regions if not r.isdigit()]
    if bad:
        raise ValueError(f"行政区划代码应为数字: {', '.join(bad)}")
    disp = f"{prefix}_dispatcher"
    out = [_role_sql(prefix), _role_sql(disp, prefix)]
    if database:
        out.append(f'GRANT CONNECT ON DATABASE "{database}" TO {prefix}')
    out += [
        f"GRANT USAGE ON SCHEMA public TO {prefix}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {prefix}",
        f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {', '.join(READ_ONLY)} FROM {prefix}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {prefix}",
        "ALTER TABLE outbox ENABLE ROW LEVEL SECURITY",
        "ALTER TABLE job_leases ENABLE ROW LEVEL SECURITY",
        "DROP POLICY IF EXISTS worker_insert ON outbox",
        f"CREATE POLICY worker_insert ON outbox FOR INSERT TO {prefix} WITH CHECK (true)",
        "DROP POLICY IF EXISTS dispatcher_all ON outbox",
        f"CREATE POLICY dispatcher_all ON outbox FOR ALL TO {disp} USING (true) WITH CHECK (true)",
        "DROP POLICY IF EXISTS dispatcher_leases ON job_leases",
        f"CREATE POLICY dispatcher_leases ON job_leases FOR SELECT TO {disp} USING (true)",
    ]
    for code in sorted(regions):
        role = f"{prefix}_{code}"
        mine = f"region_code = '{code}'"
        leased = f"EXISTS (SELECT 1 FROM outbox o WHERE o.id = job_id AND o.region_code = '{code}')"
        out += [
            _role_sql(role, prefix),
            f"DROP POLICY IF EXISTS region_{code} ON outbox",
            f"CREATE POLICY region_{code} ON outbox FOR SELECT TO {role} USING ({mine})",
            f"DROP POLICY IF EXISTS region_{code}_update ON outbox",
            f"CREATE POLICY region_{code}_update ON outbox FOR UPDATE TO {role} USING ({mine}) WITH CHECK ({mine})",
            f"DROP POLICY IF EXISTS region_{code} ON job_leases",
            f"CREATE POLICY region_{code} ON job_leases FOR ALL TO {role} USING ({leased}) WITH CHECK ({leased})",
        ]
    return out


def apply(engine: sa.Engine, prefix: str = DEFAULT_PREFIX) -> list[str]:
    """Create or refresh the roles and policies for every region of the directory; returns the
    regional roles."""
    if engine.dialect.name != "postgresql":
        raise ValueError("按地区划分的数据库角色与行级安全只用于 PostgreSQL")
    with engine.begin() as conn:
        regions = list(conn.execute(sa.select(Region.code).order_by(Region.code)).scalars())
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(7384021)"))  # one node at a time
        for sql in statements(regions, prefix, str(engine.url.database or "")):
            conn.exec_driver_sql(sql)
    return [f"{prefix}_{code}" for code in regions]
