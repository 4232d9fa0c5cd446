"""Claiming outbox jobs safely with concurrent drainers, and recording how they ended.

PostgreSQL: ``SELECT … FOR UPDATE SKIP LOCKED`` so drainers never wait on nor double-claim a
row. SQLite: one writer at a time (``BEGIN IMMEDIATE``), and a conditional UPDATE that only
succeeds while the row is still claimable. A claim is a lease: a drainer that dies leaves the
job ``running`` until the lease runs out, then anyone may claim it again (attempts + 1). A job
being run keeps its lease (``renew`` as it starts, ``kept`` while it runs), however long it takes.
A failed attempt puts the job back with ``available_at`` set by an exponential backoff: claims
skip it until then.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from core import metrics
from core.clock import now
from core.settings import get_settings
from flows import probe
from storage.flow_tables import T_LEASE, T_NOTE
from storage.rows import OutboxJobRow
from storage.tables import T_OUT, Case

log = logging.getLogger(__name__)

def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _available(at: datetime) -> Any:
    return sa.or_(T_OUT.c.available_at.is_(None), T_OUT.c.available_at <= at)


def _claimable(at: datetime) -> Any:
    expired = sa.exists().where(T_LEASE.c.job_id == T_OUT.c.id, T_LEASE.c.lease_until < at)
    return sa.or_(sa.and_(T_OUT.c.status == "pending", _available(at)),
                  sa.and_(T_OUT.c.status == "running", expired))


def backoff_seconds(attempts: int, draw: float | None = None) -> float:
    """How long a job waits after its ``attempts``-th failed attempt: base × 2^(attempts-1), at most
    the cap, spread by ±jitter so that jobs failing together come back apart."""
    s = get_settings()
    delay = min(s.job_retry_max_seconds, s.job_retry_base_seconds * 2 ** max(0, attempts - 1))
    spread = (random.random() if draw is None else draw) * 2 - 1  # in [-1, 1)
    return max(0.0, delay * (1 + s.job_retry_jitter * spread))


def next_available(engine: sa.Engine, region: str) -> datetime | None:
    """When the region's next pending job waiting out its backoff becomes claimable, if any."""
    with engine.connect() as conn:
        at = conn.execute(sa.select(sa.func.min(T_OUT.c.available_at)).where(
            T_OUT.c.region_code == region, T_OUT.c.status == "pending", T_OUT.c.available_at > now())).scalar()
    if at is not None and at.tzinfo is None:  # SQLite hands back naive UTC
        at = at.replace(tzinfo=UTC)
    return at


def claim(engine: sa.Engine, region: str | None, limit: int, owner: str | None = None,
          job_ids: list[str] | None = None) -> list[OutboxJobRow]:
    """Claim up to ``limit`` jobs (of one region, or the given ids); returns them with case data."""
    owner = owner or worker_name()
    at = now()
    until = at + timedelta(seconds=get_settings().job_lease_seconds)
    q = sa.select(T_OUT.c.id, T_OUT.c.status, T_OUT.c.region_code).where(_claimable(at))
    if region is not None:
        q = q.where(T_OUT.c.region_code == region)
    if job_ids is not None:
        q = q.where(T_OUT.c.id.in_(job_ids))
    # Jobs of one transition share created_at: the hand-off (接件) goes before the others.
    q = q.order_by(T_OUT.c.created_at, sa.case((T_OUT.c.job == "handoff", 0), else_=1)).limit(limit)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            q = q.with_for_update(of=T_OUT, skip_locked=True)
        found = conn.execute(q).all()
        claimed, expired = [], []
        for job_id, status, job_region in found:
            done = conn.execute(
                sa.update(T_OUT).where(T_OUT.c.id == job_id, _claimable(at))
                .values(status="running", attempts=T_OUT.c.attempts + 1)
            ).rowcount
            if done:
                claimed.append(job_id)
                if status == "running":  # its lease ran out: the worker that held it is gone
                    expired.append(job_region)
        if not claimed:
            return []
        conn.execute(sa.delete(T_LEASE).where(T_LEASE.c.job_id.in_(claimed)))
        conn.execute(sa.insert(T_LEASE), [
            {"job_id": j, "owner": owner, "lease_until": until} for j in claimed])
        rows = conn.execute(
            sa.select(T_OUT, Case.number, Case.item_code)
            .join(Case, Case.id == T_OUT.c.case_id).where(T_OUT.c.id.in_(claimed))
            .order_by(T_OUT.c.created_at, sa.case((T_OUT.c.job == "handoff", 0), else_=1))
        ).mappings().all()
    for job_region in expired:  # counted once the claim committed
        metrics.LEASE_EXPIRIES.labels(region=job_region).inc()
    return [dict(r) for r in rows]


def renew(engine: sa.Engine, job_id: str, owner: str | None = None) -> bool:
    """Start the job's lease afresh as the job starts; False if this drainer no longer holds it.

    A batch is claimed under one lease, but its last job starts only when the others are done:
    without a fresh lease a long batch (a certificate takes seconds on a loaded machine) would let
    the lease of a job not yet started run out, and another drainer would claim and run it too."""
    owner = owner or worker_name()
    until = now() + timedelta(seconds=get_settings().job_lease_seconds)
    with engine.begin() as conn:
        mine = sa.exists().where(T_OUT.c.id == job_id, T_OUT.c.status == "running")
        return bool(conn.execute(sa.update(T_LEASE).where(
            T_LEASE.c.job_id == job_id, T_LEASE.c.owner == owner, mine).values(lease_until=until)).rowcount)


@contextmanager
def kept(engine: sa.Engine, job_id: str, owner: str | None = None) -> Iterator[None]:
    """Keep the job's lease while the block runs: renewed every third of its length; the liveness
    probes of this process beat meanwhile (``flows.probe.beat_all``).

    The lease only has to outlast a dead worker, not the slowest job: a certificate drawn on a
    loaded machine can take longer than the lease, and without this another drainer would claim
    the job and run it a second time (the effect is kept once, the work is done twice)."""
    owner = owner or worker_name()
    stop = threading.Event()
    s = get_settings()
    every = s.job_lease_seconds / 3
    # The liveness probe beats on the same thread: a job may outlast probe_stale_seconds as it may
    # outlast its lease, and the drainer running it is not stuck.
    tick = min(every, s.probe_stale_seconds / 3)

    def beat() -> None:
        renewed = time.monotonic()
        while not stop.wait(tick):
            probe.beat_all()
            if time.monotonic() - renewed < every:
                continue
            renewed = time.monotonic()
            try:
                renew(engine, job_id, owner)
            except sa.exc.SQLAlchemyError:  # SQLite busy under the job's own write: the next beat
                log.debug("lease of %s not renewed this time", job_id, exc_info=True)

    t = threading.Thread(target=beat, name=f"lease-{job_id[:8]}", daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()


def mark_done(conn: sa.Connection, job_id: str) -> None:
    conn.execute(sa.update(T_OUT).where(T_OUT.c.id == job_id)
                 .values(status="done", finished_at=now(), last_error=None))
    conn.execute(sa.delete(T_LEASE).where(T_LEASE.c.job_id == job_id))


def mark_failed(engine: sa.Engine, job_id: str, error: str) -> str:
    """Release a job after an error: back to pending for a retry once its backoff has passed
    (``available_at``), or failed after the last attempt."""
    with engine.begin() as conn:
        attempts = conn.execute(sa.select(T_OUT.c.attempts).where(T_OUT.c.id == job_id)).scalar_one()
        status = "failed" if attempts >= get_settings().job_max_attempts else "pending"
        at = now()
        conn.execute(sa.update(T_OUT).where(T_OUT.c.id == job_id).values(
            status=status, last_error=error[:2000],
            finished_at=at if status == "failed" else None,
            available_at=at + timedelta(seconds=backoff_seconds(attempts)) if status == "pending" else None))
        conn.execute(sa.delete(T_LEASE).where(T_LEASE.c.job_id == job_id))
        if status == "failed":
            _notify_failed(conn, job_id, attempts, error)
    return status


def _notify_failed(conn: sa.Connection, job_id: str, attempts: int, error: str) -> None:
    """Tell supervisors that a job gave up (once per failure: a retried job may fail again)."""
    row = conn.execute(sa.select(T_OUT.c.case_id, T_OUT.c.job, T_OUT.c.region_code, Case.number)
                       .join(Case, Case.id == T_OUT.c.case_id).where(T_OUT.c.id == job_id)).one()
    key = f"job_failed:{job_id}:{attempts}"
    if conn.execute(sa.select(T_NOTE.c.id).where(T_NOTE.c.dedupe_key == key)).first():
        return
    conn.execute(sa.insert(T_NOTE).values(
        dedupe_key=key, case_id=row.case_id, audience="supervisor", kind="job_failed",
        created_at=now(), message=(
            f"办件 {row.number} 的自动任务 {row.job} (地区 {row.region_code}) 已失败 {attempts} 次, "
            f"不再自动重试: {error[:300]}。处理后可用 tongban jobs retry {job_id} 重新执行。")))


def release(engine: sa.Engine, job_ids: list[str], owner: str | None = None) -> int:
    """Hand claimed jobs back untouched (a worker stopping): pending again, the attempt not counted.

    Only jobs still leased by ``owner`` (this process by default) go back, so a job whose lease
    ran out and was claimed by another worker meanwhile is left to it."""
    if not job_ids:
        return 0
    owner = owner or worker_name()
    with engine.begin() as conn:
        mine = list(conn.execute(sa.select(T_LEASE.c.job_id).where(
            T_LEASE.c.job_id.in_(job_ids), T_LEASE.c.owner == owner)).scalars())
        if not mine:
            return 0
        conn.execute(sa.update(T_OUT).where(T_OUT.c.id.in_(mine), T_OUT.c.status == "running")
                     .values(status="pending", attempts=T_OUT.c.attempts - 1))
        conn.execute(sa.delete(T_LEASE).where(T_LEASE.c.job_id.in_(mine)))
    return len(mine)


def regions_with_work(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(
            sa.select(T_OUT.c.region_code).where(_claimable(now())).distinct()
        ).scalars())
