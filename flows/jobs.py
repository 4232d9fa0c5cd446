"""Job name → handler. Each handler is idempotent by job id (see ``flows.effects``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from flows.autoreview import auto_review
from flows.certificate import issue_certificate
from flows.effects import already_done
from flows.handoff import handoff
from flows.mail import create_waybill_job
from flows.notify import notify_applicant, process_recording
from flows.outbox import mark_done, mark_failed

Handler = Callable[[sa.Engine, dict[str, Any]], dict[str, Any]]

HANDLERS: dict[str, Handler] = {
    "handoff": handoff,
    "issue_certificate": issue_certificate,
    "create_waybill": create_waybill_job,
    "notify_applicant": notify_applicant,
    "auto_review": auto_review,
    "process_recording": process_recording,
}


def run(engine: sa.Engine, job: dict[str, Any]) -> dict[str, Any]:
    """Run one claimed job; on error release it for a retry (or fail it after the last attempt)."""
    if already_done(engine, job["id"]):  # a replay: the effect exists, only close the row
        with engine.begin() as conn:
            mark_done(conn, job["id"])
        return {"replay": True}
    try:
        return HANDLERS[job["job"]](engine, job)
    except Exception as exc:
        mark_failed(engine, job["id"], f"{type(exc).__name__}: {exc}")
        raise
