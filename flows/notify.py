"""通知申请人: queue an SMS about the case's new state (补正, a result, progress); and the round of
notification delivery every drain cycle runs (``engine.notify``)."""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa

from core.settings import get_settings
from engine import catalog, notify
from engine.advance import load_case
from engine.extensions import JOBS
from flows.effects import effect
from flows.outbox import worker_name
from storage.rows import OutboxJobRow

log = logging.getLogger(__name__)


def _kind(state: Any) -> tuple[str, str]:
    """The message's kind and subject: a result (a final state), a 补正 request, or progress."""
    if state is not None and state.final:
        return "result", "办理结果通知"
    if state is not None and state.id == "supplement":
        return "supplement", "补正材料通知"
    return "progress", "办件进度通知"


@JOBS.register("notify_applicant", "通知申请人")
def notify_applicant(engine: sa.Engine, job: OutboxJobRow) -> dict[str, Any]:
    """Queues the SMS in the job's own transaction, keyed by the job's id: a replayed job finds
    the key taken and queues nothing (``engine.notify`` delivers it)."""
    with effect(engine, job) as eff:
        case = load_case(eff.session, job["number"])
        item = catalog.compiled(eff.session, case["item_version_id"])
        to = (job["payload"] or {}).get("to") or case["state"]
        state = item.table[to].state if to in item.table else None
        label = state.label if state is not None else to
        message = f"您的办件 {case['number']}（{item.definition.name}）当前状态：{label}。"
        if note := (job["payload"] or {}).get("note"):  # e.g. 延期: the new due date and why
            message += note
        kind, _subject = _kind(state)
        if kind == "supplement":
            message += "请按补正告知书一次性补齐材料, 可凭查询码在办件进度查询页查看和下载告知书。"
        elif kind == "result":
            message += "可凭查询码在办件进度查询页查看结果并评价本次服务。"
        if base := get_settings().public_base_url.rstrip("/"):
            message += f" {base}/progress"
        notify.to_applicant_phone(eff.session, f"job:{job['id']}", (case["applicant"] or {}).get("phone"), kind,
                                  message, case_id=case["id"])
        eff.result["message"] = message
        eff.result["kind"] = kind
    return eff.result


def pump(engine: sa.Engine) -> dict[str, int]:
    """Send the notifications that are due, once per drain cycle. A failure here is logged and
    must not keep the cycle from draining the jobs."""
    try:
        return notify.deliver_due(engine, worker_name())
    except Exception:
        log.exception("notification delivery round failed")
        return {}


@JOBS.register("process_recording", "处理视频录像")
def process_recording(engine: sa.Engine, job: OutboxJobRow) -> dict[str, Any]:
    """Recordings are post-processed by the video service (``video.recorder``); here the job is closed."""
    with effect(engine, job) as eff:
        eff.result["note"] = "录像由视频服务处理"
    return eff.result
