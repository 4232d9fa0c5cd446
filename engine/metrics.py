"""What ``/metrics`` reads from the case database, and transitions counted as they commit.

The outbox gauges come from the database at scrape time: every node answers the same, and a
dead worker cannot take its figures with it. One grouped query over the indexed ``status``
column (the done jobs, nearly all rows, are not read). Transitions are counted after their
transaction commits (a rolled-back request counts nothing), per process.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import event
from sqlmodel import Session

from core import metrics
from core.clock import now
from storage.flow_tables import T_LEASE
from storage.tables import T_OUT, Region
from storage.video_tables import VideoRoom

_PENDING_KEY = "tongban_transitions"
OPEN = ("pending", "running", "failed")


def count_transition(session: Session, item: str, trigger: str) -> None:
    """Count a transition once the session commits (forgotten on rollback)."""
    session.info.setdefault(_PENDING_KEY, []).append((item, trigger))


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    for item, trigger in session.info.pop(_PENDING_KEY, ()):
        metrics.TRANSITIONS.labels(item=item, trigger=trigger).inc()


@event.listens_for(Session, "after_soft_rollback")
def _rolled_back(session: Session, previous_transaction: Any) -> None:
    session.info.pop(_PENDING_KEY, None)


def _age(oldest: datetime | None, at: datetime) -> float:
    if oldest is None:
        return 0.0
    if oldest.tzinfo is None:  # SQLite hands back naive UTC
        oldest = oldest.replace(tzinfo=at.tzinfo)
    return max(0.0, (at - oldest).total_seconds())


def outbox(engine: sa.Engine) -> dict[str, Any]:
    """Per region: jobs by status (pending, running, failed), the oldest waiting job's age in
    seconds, and running jobs whose lease has run out (their worker is gone)."""
    at = now()
    with engine.connect() as conn:
        rows = conn.execute(
            # A job waiting out its retry backoff has waited since it became available again.
            sa.select(T_OUT.c.region_code, T_OUT.c.status, sa.func.count(),
                      sa.func.min(sa.func.coalesce(T_OUT.c.available_at, T_OUT.c.created_at)))
            .where(T_OUT.c.status.in_(OPEN)).group_by(T_OUT.c.region_code, T_OUT.c.status)).all()
        expired = conn.execute(
            sa.select(T_OUT.c.region_code, sa.func.count())
            .join(T_LEASE, T_LEASE.c.job_id == T_OUT.c.id)
            .where(T_OUT.c.status == "running", T_LEASE.c.lease_until < at)
            .group_by(T_OUT.c.region_code)).all()
        known = list(conn.execute(sa.select(Region.code)).scalars())
    # Every region of the directory, empty ones at 0: a series that vanishes reads as "no data".
    regions: dict[str, dict[str, Any]] = {
        code: {"pending": 0, "running": 0, "failed": 0, "oldest_age": 0.0, "expired": 0} for code in known}
    for region, status, n, oldest in rows:
        r = regions.setdefault(region, {"pending": 0, "running": 0, "failed": 0, "oldest_age": 0.0, "expired": 0})
        r[status] = int(n)
        if status in ("pending", "running"):
            r["oldest_age"] = max(r["oldest_age"], _age(oldest, at))
    for region, n in expired:
        regions.setdefault(region, {"pending": 0, "running": 0, "failed": 0, "oldest_age": 0.0, "expired": 0})
        regions[region]["expired"] = int(n)
    return regions


def outbox_families(engine: sa.Engine) -> Iterable[Metric]:
    """The outbox gauges in Prometheus form (computed now)."""
    data = outbox(engine)
    depth = GaugeMetricFamily("tongban_outbox_depth", "待执行的自动任务 (pending 等待, running 执行中)",
                              labels=["region", "status"])
    age = GaugeMetricFamily("tongban_outbox_oldest_age_seconds", "最早一件未完成任务已等待的秒数",
                            labels=["region"])
    failed = GaugeMetricFamily("tongban_jobs_failed", "最终失败、等待人工处理的任务 (tongban jobs retry)",
                               labels=["region"])
    expired = GaugeMetricFamily("tongban_outbox_expired_leases", "租约已过期仍标记执行中的任务",
                                labels=["region"])
    for region, r in sorted(data.items()):
        depth.add_metric([region, "pending"], r["pending"])
        depth.add_metric([region, "running"], r["running"])
        age.add_metric([region], r["oldest_age"])
        failed.add_metric([region], r["failed"])
        expired.add_metric([region], r["expired"])
    with engine.connect() as conn:
        open_rooms = conn.execute(sa.select(sa.func.count()).select_from(VideoRoom)
                                  .where(VideoRoom.status == "open")).scalar_one()
    rooms = GaugeMetricFamily("tongban_video_rooms_open", "开启中的视频会议室 (全部节点)")
    rooms.add_metric([], open_rooms)
    return [depth, age, failed, expired, rooms]
