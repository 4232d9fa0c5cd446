"""Prefect flows that drain the outbox: one flow run per region and drain cycle, a task run per job.

Task runs are named ``<case number> · <job>``, so supervisors find a case's automated work in
the Prefect UI (search the task runs by the case number). The tags ``region:``, ``item:``, ``job:``
and ``case:`` go on the flow run, once per batch, so its list filters by them too; on a Prefect
server (distributed) each task run carries its region, item and job tags as well. Deployments of
``drain_outbox`` run on the region's work pool ``counter-<region>`` (prefect.yaml); embedded mode
calls it in-process.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

from prefect import flow, tags, task
from prefect.cache_policies import NO_CACHE

from core.settings import get_settings
from engine import anchors, appointments, deadlines, idempotency, prereview_purge
from engine.dashboard import case_tag
from flows import jobs, stopping
from flows.outbox import claim, release, renew
from storage import db
from storage.rows import OutboxJobRow

log = logging.getLogger(__name__)
_engine_override: Any = None


def use_engine(engine: Any) -> None:
    """Point in-process flows at a given case database (embedded mode and tests)."""
    global _engine_override
    _engine_override = engine


def get_engine() -> Any:
    return _engine_override or db.get_engine()


# The name is a template Prefect fills from the parameters: a ``with_options`` copy of the task
# per job cost about 2.6 ms, a tenth of a job's time on the embedded default.
@task(cache_policy=NO_CACHE, retries=0, task_run_name="{job[number]} · {job[job]}")
def run_job(job: OutboxJobRow) -> dict[str, Any]:
    return jobs.run(get_engine(), job)


def task_tags_on() -> bool:
    """Whether each job's task run carries tags (``job_task_tags``; unset: only on a Prefect server).

    Prefect 3.8 takes a concurrency slot, with a lease, for every tagged task run: two calls to
    the API. On the embedded default's ephemeral API (SQLite, a subprocess on the same cores) that
    cost about 80 ms per job, most of a job's time (11 jobs/s against over 100 untagged); on a
    server on PostgreSQL, about a fifth. Without them the flow run carries the tags (one call per
    batch, ``tag_flow_run``) and the task run's name the case.
    """
    setting = get_settings().job_task_tags
    if setting is not None:
        return setting
    from prefect.settings import get_current_settings

    return get_current_settings().api.url is not None


def tag_flow_run(claimed: list[OutboxJobRow]) -> None:
    """Add the batch's region, case, item and job tags to the running flow run (one API call)."""
    from prefect.client.orchestration import get_client
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    if ctx is None or ctx.flow_run is None:
        return
    have = list(ctx.flow_run.tags)
    wanted = [t for job in claimed for t in (f"region:{job['region_code']}", f"case:{job['number']}",
                                             f"item:{job['item_code']}", f"job:{job['job']}")]
    new = list(dict.fromkeys(t for t in wanted if t not in have))
    if not new:
        return
    try:
        with get_client(sync_client=True) as client:
            client.update_flow_run(ctx.flow_run.id, tags=have + new)
    except Exception:  # the tags help people find the run; the jobs must run without them
        log.warning("could not tag flow run %s", ctx.flow_run.id, exc_info=True)
        return
    ctx.flow_run.tags = have + new


def run_claimed(claimed: list[OutboxJobRow], beat: Callable[[], None] | None = None) -> dict[str, Any]:
    """Run claimed jobs one task run each, in claim order (a case's jobs keep their order).

    Sequential on purpose: measured on 2 cores, threads only made the API the bottleneck.
    ``beat`` (the liveness probe's) is called before each job: a batch of many jobs can outlast
    ``probe_stale_seconds`` while each job is well inside it.
    """
    done = failed = lost = 0
    tagged = task_tags_on()
    tag_flow_run(claimed)
    for i, job in enumerate(claimed):
        if beat is not None:
            beat()
        if stopping.requested():  # the worker is stopping: the rest go back, uncounted
            release(get_engine(), [j["id"] for j in claimed[i:]])
            break
        if not renew(get_engine(), job["id"]):
            lost += 1  # its lease ran out while the batch ran and another drainer has it now
            continue
        stopping.queue([j["id"] for j in claimed[i + 1:]])
        # case:<number> is what the dashboard's and case page's Prefect links filter on.
        ctx = (tags(case_tag(job["number"]), f"region:{job['region_code']}", f"item:{job['item_code']}",
                    f"job:{job['job']}")
               if tagged else nullcontext())
        try:
            with ctx:
                state = run_job(job, return_state=True)
        except stopping.Stopping:  # the grace ran out in Prefect's own code around the task run
            release(get_engine(), [j["id"] for j in claimed[i:]])  # a finished job is not leased
            raise
        finally:
            stopping.queue([])
        if state.is_completed():
            done += 1
        else:
            failed += 1
    return {"claimed": len(claimed), "done": done, "failed": failed, "lost": lost}


@flow(name="drain-outbox")
def drain_outbox(region: str, limit: int | None = None, rounds: int = 20) -> dict[str, Any]:
    """Claim and run the region's pending jobs, batch after batch (follow-ups join the next one)."""
    engine = get_engine()
    size = limit or get_settings().job_batch_size
    total: dict[str, Any] = {"claimed": 0, "done": 0, "failed": 0, "lost": 0, "region": region}
    with stopping.stop_on_sigterm():
        for _ in range(rounds):
            if stopping.requested():
                break
            claimed = claim(engine, region, size)
            if not claimed:
                break
            try:
                counts = run_claimed(claimed)
            except stopping.Stopping:
                break  # the job in hand and the rest were handed back (flows.jobs, run_claimed)
            for k, v in counts.items():
                total[k] += v
    return total | {"stopped": stopping.requested()}


@flow(name="run-job")
def run_single_job(job_id: str) -> dict[str, Any]:
    """One flow run for one job (the unbatched baseline of bench/bench_jobs.py)."""
    return run_claimed(claim(get_engine(), None, 1, job_ids=[job_id]))


@flow(name="deadline-sweep")
def deadline_sweep() -> dict[str, int]:
    """Mark 预警 / 逾期 on open cases and queue notifications to supervisors. On the same hourly
    schedule: expired Idempotency-Key answers go, bookings never checked in become no-shows, and
    the history gets a signed anchor, and 要件预审 drafts past their retention go."""
    with db.session_scope(get_engine()) as session:
        counts = deadlines.sweep(session) | {"idempotency_purged": idempotency.purge(session),
                                             "appointment_no_shows": appointments.mark_no_shows(session)}
    return counts | prereview_purge.purge(get_engine()) | anchors.periodic(get_engine())
