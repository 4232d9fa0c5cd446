"""Jobs that gave up after their last attempt: listed for operators and put back on request.

A job fails for good after ``job_max_attempts`` (supervisors are notified then: outbox.mark_failed).
``retry`` makes it pending again with a fresh count of attempts, keeping its last error until it
runs, so whoever fixed the cause (a missing template, a full disk) re-runs it with
``tongban jobs retry``; the job's idempotency (job id as key) still holds.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from storage.flow_tables import T_LEASE
from storage.tables import T_OUT, Case


def failed(engine: sa.Engine, region: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    q = (sa.select(T_OUT.c.id, Case.number, T_OUT.c.job, T_OUT.c.region_code, T_OUT.c.attempts,
                   T_OUT.c.finished_at, T_OUT.c.last_error)
         .join(Case, Case.id == T_OUT.c.case_id).where(T_OUT.c.status == "failed")
         .order_by(T_OUT.c.finished_at, T_OUT.c.id).limit(limit))
    if region is not None:
        q = q.where(T_OUT.c.region_code == region)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(q).mappings()]


def count_failed(engine: sa.Engine, region: str | None = None) -> int:
    """How many jobs have failed for good (all of them, whatever ``failed`` lists)."""
    q = sa.select(sa.func.count()).select_from(T_OUT).where(T_OUT.c.status == "failed")
    if region is not None:
        q = q.where(T_OUT.c.region_code == region)
    with engine.connect() as conn:
        return int(conn.execute(q).scalar_one())


def retry(engine: sa.Engine, job_ids: list[str] | None = None, region: str | None = None) -> list[str]:
    """Put failed jobs (the given ids, or all of a region, or all) back to pending; returns their ids."""
    q = sa.select(T_OUT.c.id).where(T_OUT.c.status == "failed")
    if job_ids is not None:
        q = q.where(T_OUT.c.id.in_(job_ids))
    if region is not None:
        q = q.where(T_OUT.c.region_code == region)
    with engine.begin() as conn:
        ids = list(conn.execute(q).scalars())
        if ids:
            conn.execute(sa.delete(T_LEASE).where(T_LEASE.c.job_id.in_(ids)))
            conn.execute(sa.update(T_OUT).where(T_OUT.c.id.in_(ids), T_OUT.c.status == "failed")
                         .values(status="pending", attempts=0, finished_at=None, available_at=None))
    return ids
