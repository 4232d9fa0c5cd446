"""通知申请人: queue a message about the case's new state (sent by a messaging gateway later)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from core.clock import now
from engine import catalog
from engine.advance import load_case
from engine.extensions import JOBS
from flows.effects import effect
from storage.flow_tables import Notification
from storage.rows import OutboxJobRow


@JOBS.register("notify_applicant", "通知申请人")
def notify_applicant(engine: sa.Engine, job: OutboxJobRow) -> dict[str, Any]:
    with effect(engine, job) as eff:
        case = load_case(eff.session, job["number"])
        item = catalog.compiled(eff.session, case["item_version_id"])
        to = (job["payload"] or {}).get("to") or case["state"]
        label = item.table[to].state.label if to in item.table else to
        message = f"您的办件 {case['number']}（{item.definition.name}）当前状态：{label}。"
        if note := (job["payload"] or {}).get("note"):  # e.g. 延期: the new due date and why
            message += note
        eff.session.add(Notification(dedupe_key=f"job:{job['id']}", case_id=case["id"],
                                     audience="applicant", kind="progress", message=message,
                                     created_at=now()))
        eff.result["message"] = message
    return eff.result


@JOBS.register("process_recording", "处理视频录像")
def process_recording(engine: sa.Engine, job: OutboxJobRow) -> dict[str, Any]:
    """Recordings are post-processed by the video service (``video.recorder``); here the job is closed."""
    with effect(engine, job) as eff:
        eff.result["note"] = "录像由视频服务处理"
    return eff.result
