"""推送事件订阅: deliver a webhook subscription's events (``engine.webhooks``), one outbox job per round.

The round's deliveries commit one by one as they happen (an HTTP call cannot join a transaction);
the job's own effect only says the round is over, so the next one may be queued. A replayed job
starts again at the subscription's cursor: nothing it already delivered is lost, at most the
event in flight is sent again.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa

from engine import webhooks
from engine.extensions import JOBS
from flows.effects import effect
from storage.rows import OutboxJobRow

log = logging.getLogger(__name__)


@JOBS.register(webhooks.JOB, "推送事件订阅")
def deliver_webhook(engine: sa.Engine, job: OutboxJobRow) -> dict[str, Any]:
    webhook_id = (job["payload"] or {}).get("webhook")
    result = (webhooks.deliver_round(engine, int(webhook_id), job["id"]) if isinstance(webhook_id, int)
              else {"skipped": "任务未指明事件订阅"})
    with effect(engine, job) as eff:
        if isinstance(webhook_id, int):
            webhooks.release(eff.session, webhook_id, job["id"])
        eff.result.update(result)
    return eff.result


def pump(engine: sa.Engine) -> None:
    """Queue the webhook deliveries that are due, before a drain cycle claims its jobs. A failure
    here is logged and must not keep the cycle from draining the other jobs."""
    try:
        webhooks.pump(engine)
    except Exception:
        log.exception("webhook pump failed")
