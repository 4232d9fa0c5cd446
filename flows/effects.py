"""The one transaction a job's effect is written in, with its job id, follow-up and outbox mark.

A job's effect row, the ``job_effects`` row (job id as primary key), the follow-up trigger
fired through ``engine.advance`` and the outbox row marked done all commit together or not at
all: a worker killed mid-job leaves nothing behind but, at most, an unreferenced object.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from core.clock import now
from core.settings import get_settings
from engine.actors import SYSTEM
from engine.advance import fire_first_open
from engine.extensions import JOBS
from flows.outbox import mark_done, worker_name
from storage.db import session_scope
from storage.flow_tables import JobEffect
from storage.rows import OutboxJobRow


@dataclass
class Effect:
    session: Session
    job: OutboxJobRow
    result: dict[str, Any] = field(default_factory=dict)
    # Triggers to try after the effect (first open wins; the job's registered ``follow_ups``,
    # fired for the system actor as a clerk would), and the history payload to send.
    fire: tuple[str, ...] = ()
    payload: dict[str, Any] = field(default_factory=dict)


def already_done(engine: sa.Engine, job_id: str) -> bool:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(JobEffect.job_id).where(JobEffect.job_id == job_id)).first() is not None


@contextmanager
def effect(engine: sa.Engine, job: OutboxJobRow) -> Iterator[Effect]:
    with session_scope(engine) as session:
        eff = Effect(session, job, fire=JOBS[job["job"]].meta.get("follow_ups", ()))
        yield eff
        pause = get_settings().job_pause_seconds
        if pause:
            time.sleep(pause)  # crash drills: a worker killed here must leave nothing behind
        if eff.fire:
            eff.result["fired"] = fire_first_open(session, job["number"], eff.fire, SYSTEM,
                                                  eff.payload)
        session.add(JobEffect(job_id=job["id"], job=job["job"], case_id=job["case_id"], at=now(),
                              worker=worker_name(), result=eff.result))
        session.flush()  # the primary key refuses a second effect of the same job
        mark_done(session.connection(), job["id"])
