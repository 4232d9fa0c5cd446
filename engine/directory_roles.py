"""Least privilege for regional workers: a PostgreSQL role per region of the directory, and
row-level security so that a region's worker can claim, lease and complete only its own jobs.

``apply(engine)`` (``tongban directory roles``) creates, for the directory's regions:

- ``<prefix>`` (NOLOGIN): what every worker may do: read the tables, and write what jobs write,
  table by table (``WRITES``, an allow-list: a table it does not name is read only, so a new
  table is closed until someone says what workers do with it). History and job effects are
  append-only; rows are deleted only where jobs delete them (leases, the
  current holder of a case, expired idempotency keys, the webhook log). Nothing of the
  directory, the clerks, their tokens, the catalog or the migrations (``READ_ONLY``).
- ``<prefix>_<region>`` (NOLOGIN, member of ``<prefix>``): its policies on ``outbox`` and
  ``job_leases``: it sees, claims, leases and completes the jobs of its region only. It inserts
  jobs only for the regions of the case's intake and competent counters (a follow-up, such as
  the hand-off back to the intake counter) and the video queue (a room's recording), never for
  a region the case has nothing to do with.
- ``<prefix>_video`` (NOLOGIN, member of ``<prefix>``): the video queue's worker on Janus's
  machine (``tongban worker --region video``): it sees, claims, leases and completes the jobs of
  the video queue (``video_job_queue``: a room's recordings) only, as a region's worker its own
  (a region's role does not see them; the dispatcher's sees every region's).
- ``<prefix>_dispatcher`` (NOLOGIN, member of ``<prefix>``): sees every region's jobs (it
  starts their drains), and queues webhook deliveries.

Who runs what in a distributed setup, each with the role above that the deploy gives it (and
``tests/test_directory_roles.py`` runs each under it against PostgreSQL, with these grants):

- ``drain-outbox/counter-<region>`` (every 60 s, and when dispatched) and the region's listening
  drainer (``flows.listen``): the region's worker, ``<prefix>_<region>``; a job's last failed
  attempt queues the supervisors' notification there too. ``counter-video``: ``<prefix>_video``.
- ``deadline-sweep`` (hourly: 预警/逾期 and the supervisors' notifications for every region's
  cases, expired Idempotency-Key answers purged, no-shows, the history's anchor): on the pool of
  whichever worker registered it (``flows.deploy.ensure_sweep``), so under *that* worker's role,
  a region's or the video queue's. It needs nothing a worker lacks: the case tables have no
  row-level security, and the anchor goes to the object store, not the database.
- ``tongban dispatch`` (every second: webhook deliveries queued as jobs of their regions, due
  notifications sent and retried, the regions with work found): ``<prefix>_dispatcher``.
- Not scheduled, run by an operator with the owner's connection (the API's): ``tongban db
  upgrade``, ``directory import``/``roles``, ``jobs retry``, ``storage sweep``, ``audit anchor``.

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

from core.settings import get_settings
from storage.tables import Region

DEFAULT_PREFIX = "tongban_worker"
VIDEO = "video"  # ``<prefix>_video``: the role of the video queue's worker (whatever the queue's name)
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")
# Written by the directory import, the catalog, clerk and token administration and migrations
# only: a worker reads them.
READ_ONLY = ("alembic_version", "api_tokens", "clerks", "counter_items", "counter_kinds", "counters",
             "counter_service", "counter_groups",
             "directory_clerks", "directory_versions", "item_versions", "regions", "supervisor_regions",
             "units", "unit_seals", "calendar_schedules")


APPEND, IU, IUD = "INSERT", "INSERT, UPDATE", "INSERT, UPDATE, DELETE"
# What a worker may write, per table (it reads every table). A job's follow-up fires a transition
# (engine.advance), so the case's own tables are written as by the API. The scheduled work (the
# deadline sweep, the dispatcher's round) writes nothing beyond it: tests/test_directory_roles.py.
WRITES: dict[str, str] = {
    "appointment_slots": IU, "appointments": IU, "case_changes": IU, "case_documents": IU,
    "case_holders": IUD, "case_materials": IU, "case_pages": IU, "case_search": IU,
    "case_search_counters": IU, "case_search_keys": IU, "cases": IU, "certificates": IU,
    "evaluations": IU, "evidence": IU, "exchange_exports": IU, "feed_case_counters": IU,
    "feed_events": IU, "feed_state": IU, "history": APPEND, "idempotency": IUD, "job_effects": APPEND,
    "job_leases": IUD, "notification_attempts": IU, "notifications": IU, "outbox": IU,
    "prereview_drafts": IU, "prereviews": IU, "query_guards": IU, "rectifications": IU,
    "sequences": IU, "tickets": IU, "tracking_events": IU, "video_participants": IU,
    "video_recordings": IU, "video_room_events": IU, "video_rooms": IU, "waybills": IU,
    "webhook_deliveries": IUD, "webhooks": IU,
}
# A job may queue work for the regions the case is handled in (its intake and competent
# counters') and for the video queue (a room closed by a job: its recording, on Janus's machine).
CASE_REGIONS = ("region_code IN (SELECT c.region_code FROM cases k JOIN counters c "
                "ON c.id IN (k.intake_counter_id, k.competent_counter_id) WHERE k.id = case_id)")
_QUEUE = re.compile(r"^[A-Za-z0-9_-]{1,12}$")


def _video_queue() -> str:
    queue = get_settings().video_job_queue
    if not _QUEUE.match(queue):
        raise ValueError(f"视频任务队列名只能用字母、数字、-_ (最长 12): {queue}")
    return queue


def _insert_check() -> str:
    return f"{CASE_REGIONS} OR region_code = '{_video_queue()}'"


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
        f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {prefix}",
        # Again after an older grant of everything: only what WRITES names stays writable.
        f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA public FROM {prefix}",
        *(f"GRANT {privileges} ON {table} TO {prefix}" for table, privileges in sorted(WRITES.items())),
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {prefix}",
        "ALTER TABLE outbox ENABLE ROW LEVEL SECURITY",
        "ALTER TABLE job_leases ENABLE ROW LEVEL SECURITY",
        "DROP POLICY IF EXISTS worker_insert ON outbox",
        f"CREATE POLICY worker_insert ON outbox FOR INSERT TO {prefix} WITH CHECK ({_insert_check()})",
        "DROP POLICY IF EXISTS dispatcher_all ON outbox",
        f"CREATE POLICY dispatcher_all ON outbox FOR ALL TO {disp} USING (true) WITH CHECK (true)",
        "DROP POLICY IF EXISTS dispatcher_leases ON job_leases",
        f"CREATE POLICY dispatcher_leases ON job_leases FOR SELECT TO {disp} USING (true)",
    ]
    for code in sorted(regions):
        out += _queue_policies(prefix, code, f"region_{code}", code)
    # The video queue's worker (on Janus's machine): its queue's jobs, as a region's worker its own.
    return out + _queue_policies(prefix, VIDEO, "video_queue", _video_queue())


def _queue_policies(prefix: str, suffix: str, policy: str, queue: str) -> list[str]:
    """The role ``<prefix>_<suffix>`` and its policies: it sees, claims, leases and completes the
    jobs of ``queue`` (a region, or the video queue) only."""
    role = f"{prefix}_{suffix}"
    mine = f"region_code = '{queue}'"
    leased = f"EXISTS (SELECT 1 FROM outbox o WHERE o.id = job_id AND o.region_code = '{queue}')"
    return [
        _role_sql(role, prefix),
        f"DROP POLICY IF EXISTS {policy} ON outbox",
        f"CREATE POLICY {policy} ON outbox FOR SELECT TO {role} USING ({mine})",
        f"DROP POLICY IF EXISTS {policy}_update ON outbox",
        f"CREATE POLICY {policy}_update ON outbox FOR UPDATE TO {role} USING ({mine}) WITH CHECK ({mine})",
        f"DROP POLICY IF EXISTS {policy} ON job_leases",
        f"CREATE POLICY {policy} ON job_leases FOR ALL TO {role} USING ({leased}) WITH CHECK ({leased})",
    ]


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
