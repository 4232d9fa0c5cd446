"""Runs one claimed outbox job with the handler registered for its name (``engine.extensions.JOBS``).

Each handler is idempotent by job id (see ``flows.effects``).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from core import metrics
from engine import extensions
from engine.extensions import JOBS
from flows.effects import already_done
from flows.outbox import kept, mark_done, mark_failed, release
from flows.stopping import Stopping, take_queued
from storage.rows import OutboxJobRow


def run(engine: sa.Engine, job: OutboxJobRow) -> dict[str, Any]:
    """Run one claimed job; on error release it for a retry (or fail it after the last attempt)."""
    if already_done(engine, job["id"]):  # a replay: the effect exists, only close the row
        with engine.begin() as conn:
            mark_done(conn, job["id"])
        return {"replay": True}
    extensions.load()
    try:
        entry = JOBS.get(job["job"])
        if entry is None:  # a version published before the job was removed from the code
            raise LookupError(f"未注册的自动任务 '{job['job']}'")
        with kept(engine, job["id"]):
            result = entry.impl(engine, job)
        metrics.JOBS.labels(job=job["job"], outcome="done").inc()
        return result
    except Stopping:  # the worker is stopping and the job outlived its grace: rolled back, handed back
        release(engine, [job["id"], *take_queued()])  # with the batch's rest, before Prefect reports
        raise
    except Exception as exc:
        status = mark_failed(engine, job["id"], f"{type(exc).__name__}: {exc}")
        metrics.JOBS.labels(job=job["job"], outcome="failed" if status == "failed" else "retry").inc()
        raise
