"""The auto_review job: apply the item's 网络自动审批 rules, approve or send to a person."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from core.clock import now
from engine import catalog
from engine.actors import SYSTEM
from engine.advance import append_event, fire_first_open, load_case
from engine.autoreview import evaluate
from engine.extensions import JOBS
from engine.guards import load_materials
from flows.effects import effect
from storage.rows import OutboxJobRow


@JOBS.register("auto_review", "网络自动审批")
def auto_review(engine: sa.Engine, job: OutboxJobRow) -> dict[str, Any]:
    with effect(engine, job) as eff:
        s = eff.session
        case = load_case(s, job["number"])
        d = catalog.compiled(s, case["item_version_id"]).definition
        if d.auto_review is None:
            eff.result["note"] = "事项未声明自动审批规则"
            return eff.result
        materials = {k: v["status"] for k, v in load_materials(s, case["id"]).items()}
        dec = evaluate(d, case, materials)
        verdict = "全部通过, 自动批准" if dec.approved else "未通过, 转人工审核"
        data = {"auto_review": {"approved": dec.approved, "rule": dec.rule, "label": dec.label,
                                "reason": dec.reason, "job_id": job["id"]}}
        comment = f"网络自动审批: 规则「{dec.label}」({dec.rule}) 决定 — {verdict}: {dec.reason}"
        trigger = d.auto_review.approve if dec.approved else d.auto_review.manual
        fired = None
        if trigger:
            fired = fire_first_open(s, job["number"], (trigger,), SYSTEM,
                                    {"comment": comment, "data": data})
        if fired is None:  # nothing to fire (or no longer open): still say which rule decided
            append_event(s, load_case(s, job["number"]), None, now(), "auto_review", SYSTEM,
                         data, comment)
        eff.result.update(data["auto_review"], fired=fired)
    return eff.result
